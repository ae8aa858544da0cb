"""Builds the compiled counting engine (corpora_stats/_engine.pyx, Cython); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize(
    [Extension("corpora_stats._engine", ["corpora_stats/_engine.pyx"], extra_compile_args=["-O3"])],
    compiler_directives={"language_level": 3}, quiet=True))
