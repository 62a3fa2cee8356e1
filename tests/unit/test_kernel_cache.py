"""The kernel cache is named after the kernel sources, so an edit can never run stale code.

Numba checks only a kernel's own file; nperf.kernels.jit puts a digest of
every kernel source in the cache path (see its docstring). These tests edit a
copy of the package and watch the digest, and let the warm-up's cleaning
loose on a scratch cache root.
"""
import os
import shutil

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
