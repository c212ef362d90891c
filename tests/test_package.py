"""The installable package: console scripts, package data, and dependency pins that agree with requirements.txt."""

import fnmatch
import importlib
import re
import subprocess
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_console_scripts_name_the_root_scripts_entry_points():
    scripts = PYPROJECT["project"]["scripts"]
    assert set(scripts) == {"vaner-train", "vaner-build-dbr", "vaner-evaluate", "vaner-predict"}
    for target in scripts.values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target
        assert module in PYPROJECT["tool"]["setuptools"]["py-modules"]


def test_package_data_ships_the_card_templates_and_every_file_of_the_default_model():
    package_data = PYPROJECT["tool"]["setuptools"]["package-data"]
    tracked = subprocess.run(["git", "ls-files", "vaner/default_model", "hub_card"], cwd=ROOT, capture_output=True,
                             text=True).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    for path in tracked:
        if path.endswith(".py") and path.startswith("hub_card/"):
            continue  # the package's module itself
        package, relative = path.split("/", 1) if path.startswith("hub_card/") else ("vaner", path[len("vaner/"):])
        assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data[package]), f"{path} is not shipped"


def test_dependencies_are_those_of_requirements_txt():
    requirements = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name = re.match(r"[A-Za-z0-9_.-]+", line).group(0).lower()
            requirements[name] = line.replace(" ", "")
    for dependency in PYPROJECT["project"]["dependencies"]:
        name = re.match(r"[A-Za-z0-9_.-]+", dependency).group(0).lower()
        assert requirements.get(name) == dependency.replace(" ", ""), f"{dependency} differs from requirements.txt"
