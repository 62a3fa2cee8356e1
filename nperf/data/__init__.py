"""Files nperf ships inside the package, so that an installed nperf needs no checkout.

`SEED_TEST3` is the seed's memif/test3 topology, byte for byte (tests check
the sha256 against tests/seed_configs): the warm-up builds its kernels'
argument types from it and the benchmarks run it.
"""
import os

SEED_TEST3 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seed", "memif", "test3")
