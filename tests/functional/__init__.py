"""Functional tests: real servers, real PostgreSQL, real programs (see tests/__init__.py)."""
