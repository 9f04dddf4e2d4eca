"""Course exercises. This file and ``tests/__init__.py`` make ``exercises.tests.conftest`` a unique
module name, so ``pytest --doctest-modules`` can collect it alongside the top-level ``tests/conftest.py``."""
