"""Tests of the exercises (see ``exercises/__init__.py`` for why this folder is a package)."""
