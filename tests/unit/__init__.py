"""Unit tests: nothing outside the test process (see tests/__init__.py)."""
