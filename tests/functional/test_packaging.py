"""The package as pip builds it: every file the application reads at run time is in the wheel,
nothing else is (harness/, run from the project root like tests/, is never installed), and
setuptools has nothing to warn about on the way.

Its warnings ("Package would be ignored", 40 lines for each data directory) scrolled past a
newcomer's first ``make run``; they come from the build of the wheel, so the test builds one,
as pip does for ``pip install``, from a copy of the sources in a scratch directory (a build
writes its ``build/`` and ``*.egg-info`` next to the sources).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import unittest
import zipfile
from pathlib import Path

from harness.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
PACKAGE = "aiotutorial"
# Python's warning classes by name (BuildBackendWarning, SetuptoolsDeprecationWarning...);
# pip's own "WARNING:" lines about this machine's package indexes are not the build's.
WARNING = re.compile(r"\b[A-Z][A-Za-z]*Warning\b|would be ignored")
# Packages of the project root that are run from it and never installed.
NOT_INSTALLED = ("harness",)


class WheelTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        scratch = tempfile.TemporaryDirectory(prefix="aiotutorial-wheel-")
        cls.addClassCleanup(scratch.cleanup)
        cls.source = Path(scratch.name) / "source"
        cls.source.mkdir()
        for name in ("setup.py", "pyproject.toml"):
            shutil.copy(ROOT / name, cls.source / name)
        for name in (PACKAGE, *NOT_INSTALLED):
            shutil.copytree(
                ROOT / name,
                cls.source / name,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        dist = Path(scratch.name) / "dist"
        # -v: pip shows the build backend's output (its warnings) only when asked.
        command = [sys.executable, "-m", "pip", "wheel", "-v", "--no-deps"]
        command += ["--disable-pip-version-check", "--wheel-dir", str(dist), str(cls.source)]
        cls.build = subprocess.run(command, capture_output=True, text=True, timeout=300)
        wheels = list(dist.glob("*.whl"))
        cls.wheel = wheels[0] if len(wheels) == 1 else None

    def output(self) -> str:
        return self.build.stdout + self.build.stderr

    def test_the_build_has_no_warning(self) -> None:
        self.assertEqual(self.build.returncode, 0, self.output())
        warnings = [line for line in self.output().splitlines() if WARNING.search(line)]
        self.assertEqual(warnings, [], self.output())

    def test_the_wheel_holds_every_file_of_the_package(self) -> None:
        self.assertIsNotNone(self.wheel, self.output())
        assert self.wheel is not None
        with zipfile.ZipFile(self.wheel) as wheel:
            packed = {name for name in wheel.namelist() if name.startswith(f"{PACKAGE}/")}
        sources = {
            path.relative_to(self.source).as_posix()
            for path in (self.source / PACKAGE).rglob("*")
            if path.is_file()
        }
        self.assertEqual(sorted(sources - packed), [])
        # What the application opens by path, named: a glob gone wrong cannot hide them all.
        for name in (
            "static/site.css",
            "static/favicon.svg",
            "templates/layout.jinja2",
            "game/wordlists/en.txt",
            "game/wordlists/de.txt",
            "game/wordlists/LICENSE",
            "py.typed",
            "aio/py.typed",
        ):
            self.assertIn(f"{PACKAGE}/{name}", packed)

    def test_the_wheel_holds_the_package_alone(self) -> None:
        self.assertIsNotNone(self.wheel, self.output())
        assert self.wheel is not None
        with zipfile.ZipFile(self.wheel) as wheel:
            tops = {name.split("/")[0] for name in wheel.namelist()}
        self.assertEqual({top for top in tops if not top.endswith(".dist-info")}, {PACKAGE})


if __name__ == "__main__":
    unittest.main()
