"""The kernel cache is named after the kernel sources, so an edit can never run stale code.

Numba checks only a kernel's own file; nperf.kernels.jit puts a digest of
every kernel source in the cache path (see its docstring). These tests edit a
copy of the package and watch the digest, and let the warm-up's cleaning
loose on a scratch cache root.
"""
import os
import shutil
import subprocess
import sys

from nperf import warmup
from nperf.kernels import jit


def _copy(tmp_path) -> str:
    pkg = str(tmp_path / "nperf")
    shutil.copytree(jit.PACKAGE, pkg, ignore=shutil.ignore_patterns("__pycache__"))
    return pkg


def _append(path: str, text: str) -> None:
    assert os.path.isfile(path), path               # an edit, not a new file
    with open(path, "a") as f:
        f.write(text)


def test_the_digest_is_the_installed_sources(tmp_path):
    pkg = _copy(tmp_path)
    assert jit.sources_digest(pkg) == jit.DIGEST
    assert os.path.basename(jit.numba.config.CACHE_DIR).endswith(jit.DIGEST)


def test_an_edit_to_any_kernel_source_changes_the_digest(tmp_path):
    pkg = _copy(tmp_path)
    seen = {jit.sources_digest(pkg)}
    for rel in ("kernels/tcp.py", "kernels/http_server.py", "bindings/intrinsics.py", "bench/pair.py"):
        _append(os.path.join(pkg, rel), "\n# edited\n")
        seen.add(jit.sources_digest(pkg))
    assert len(seen) == 5, seen                     # each edit gave a new directory
    before = jit.sources_digest(pkg)
    _append(os.path.join(pkg, "cli.py"), "\n# not a kernel\n")
    assert jit.sources_digest(pkg) == before        # a non-kernel file leaves the cache alone


def test_the_warm_up_removes_only_other_sources_caches(tmp_path, monkeypatch):
    root = tmp_path / "numba"
    for d in (jit.DIGEST, "split-" + jit.DIGEST, "0123456789abcdef", "split-0123456789abcdef"):
        (root / d).mkdir(parents=True)
    monkeypatch.setattr(jit, "CACHE_ROOT", str(root))
    assert sorted(os.path.basename(d) for d in warmup.stale_caches()) == ["0123456789abcdef",
                                                                         "split-0123456789abcdef"]
    monkeypatch.setattr(jit.numba.config, "CACHE_DIR", str(root / jit.DIGEST))
    assert warmup.clean(everything=False) == 2
    assert sorted(os.listdir(root)) == sorted([jit.DIGEST, "split-" + jit.DIGEST])
    assert warmup.clean(everything=True) == 1
    assert os.listdir(root) == ["split-" + jit.DIGEST]


def test_copies_of_the_same_sources_share_one_cache(tmp_path):
    """A kernel compiled by one copy of the package loads from the cache in another copy elsewhere."""
    probe = ("import numpy as np; from nperf.kernels import http_client as hc; "
             "hc.render_host(0, 1, 80, np.zeros(48, np.uint8)); s = hc.render_host.stats; "
             "print(hc.__file__, sum(s.cache_hits.values()), sum(s.cache_misses.values()))")
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "shared"))
    for name in ("PYTHONPATH", "NUMBA_BOUNDSCHECK", "NUMBA_OPT", "NPERF_PERF_SPLIT"):
        env.pop(name, None)                         # bounds-checked code is never cached (the rerun's flags)
    seen = []
    for name in ("one", "two"):
        where = tmp_path / name
        _copy(where)
        run = subprocess.run([sys.executable, "-c", probe], cwd=where, env=env, capture_output=True,
                             text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        module, hits, misses = run.stdout.split()
        assert module == str(where / "nperf" / "kernels" / "http_client.py")
        seen.append((int(hits), int(misses)))
    assert seen == [(0, 1), (1, 0)]                 # compiled by the first copy, loaded by the second
