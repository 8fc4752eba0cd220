"""Browser tests: Debian's Chromium driven by Playwright (see tests/__init__.py)."""
