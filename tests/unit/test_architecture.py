"""Layering rules checked on the source itself (ast), so they hold for code not yet written."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("amplify", "connectors")
UI = ROOT / "amplify" / "ui"


def _sources() -> list[Path]:
    files: list[Path] = []
    for package in PACKAGES:
        files.extend(sorted((ROOT / package).rglob("*.py")))
    return files


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _top(name: str) -> str:
    return name.split(".", 1)[0]


def test_it_finds_the_code_it_checks():
    sources = _sources()
    assert ROOT / "amplify" / "workflow.py" in sources
    assert ROOT / "connectors" / "base.py" in sources


def test_it_sees_streamlit_imports_in_every_form(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "import os\nimport streamlit as st\nfrom streamlit.testing import v1\n"
        "import importlib\nimportlib.import_module('streamlit')\n"
    )
    assert {"streamlit", "streamlit.testing"} <= _imported_modules(sample)


def test_it_keeps_streamlit_out_of_everything_but_the_ui():
    offenders = [
        str(path.relative_to(ROOT))
        for path in _sources()
        if not path.is_relative_to(UI)
        and any(_top(name) == "streamlit" for name in _imported_modules(path))
    ]
    assert offenders == [], f"only amplify/ui may import streamlit: {offenders}"


def test_it_keeps_connectors_independent_of_the_ui_and_the_workflow():
    forbidden = ("amplify.ui", "amplify.workflow", "amplify.permissions", "amplify.users")
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / "connectors").rglob("*.py"))
        for name in _imported_modules(path)
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    ]
    assert offenders == []


def test_it_keeps_services_free_of_the_ui():
    offenders = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in _sources()
        if not path.is_relative_to(UI)
        for name in _imported_modules(path)
        if name == "amplify.ui" or name.startswith("amplify.ui.")
    ]
    assert offenders == []
