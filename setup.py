"""setuptools entry that builds the cffi (API mode) DPDK extension; metadata is in pyproject.toml."""
from setuptools import setup

setup(cffi_modules=["nperf/bindings/_build.py:ffibuilder"])
