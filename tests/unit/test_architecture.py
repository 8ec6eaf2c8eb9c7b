"""Layering rules checked on the source itself (ast), so they hold for code not yet written.

The layers, lowest first; a module may import its own layer and the ones below, never above
(dynamic imports included: ``importlib.import_module("...")`` and ``__import__("...")``):

1. core: configuration, errors, the models and the database, crypto, logs, text and media
   rules, the retry policy, the event seam (``amplify.events``). ``amplify.media`` is core: it
   imports only config, errors and models (its image checks are what connectors/base.py uses).
2. connectors: one module per platform; they may use core helpers and each other only.
3. domain: stories, queue, publishing, accounts, people, campaigns, insights. They tell the
   layers above about a change through ``amplify.events``, never by importing them.
4. runtime: the worker, the embedded runner, notifications, the demo builder.
5. interface: the CLI and the dashboard (``amplify.ui``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

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


CORE, CONNECTORS, DOMAIN, RUNTIME, INTERFACE = range(1, 6)
LAYER_NAMES = {1: "core", 2: "connectors", 3: "domain", 4: "runtime", 5: "interface"}
# Every module (or package) is named here: a new one fails the test until it is placed.
LAYERS: dict[str, int] = {
    "amplify": CORE,
    **{
        f"amplify.{m}": CORE
        for m in [
            "config",
            "errors",
            "models",
            "db",
            "migrate",
            "migrations",
            "crypto",
            "logs",
            "csvsafe",
            "textrules",
            "media",
            "retry",
            "simulated",
            "events",
        ]
    },
    "connectors": CONNECTORS,
    **{
        f"amplify.{m}": DOMAIN
        for m in [
            "workflow",
            "permissions",
            "workspace",
            "accounts",
            "users",
            "sessions",
            "signin",
            "resets",
            "campaigns",
            "importer",
            "slots",
            "queries",
            "calendar_events",
            "checklist",
            "notify_channels",
            "queue",
            "publisher",
            "ratelimit",
            "amplification",
            "metrics",
            "snapshots",
            "analytics",
            "report",
        ]
    },
    **{f"amplify.{m}": RUNTIME for m in ["worker", "embedded", "notify", "demo"]},
    "amplify.cli": INTERFACE,
    "amplify.ui": INTERFACE,
}
# Where a module may import a module it cannot name as a literal: the connector registry.
DYNAMIC_IMPORTS_ALLOWED = {"connectors.registry"}


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _key(name: str) -> str | None:
    """The LAYERS entry that ``name`` (a module, or an attribute of one) falls under: its
    longest named prefix; the bare ``amplify`` package never stands for its submodules."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        prefix = ".".join(parts[:end])
        if prefix == "amplify" and name != "amplify":
            continue
        if prefix in LAYERS:
            return prefix
    return None


def _layer(name: str) -> int | None:
    key = _key(name)
    return None if key is None else LAYERS[key]


def _imports_with_submodules(path: Path, module: str) -> set[str]:
    """What ``path`` imports, with ``from amplify import notify`` read as ``amplify.notify``
    and relative imports resolved against ``module``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = _imported_modules(path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
                names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _unreadable_dynamic_imports(path: Path) -> int:
    """``import_module``/``__import__`` calls whose module the checker cannot read."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    count = 0
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and not (node.args and isinstance(node.args[0], ast.Constant))
        ):
            count += 1
    return count


def layer_violations(root: Path) -> list[str]:
    """Every import in ``root``'s amplify/ and connectors/ that goes to a higher layer, every
    module no layer names, and every dynamic import the checker cannot read."""
    problems: list[str] = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            module = _module_name(root, path)
            own = _layer(module)
            if own is None:
                problems.append(f"{module} is in no layer: add it to LAYERS")
                continue
            reached = {_key(name) for name in _imports_with_submodules(path, module)}
            for key in sorted(k for k in reached if k is not None and LAYERS[k] > own):
                problems.append(
                    f"{module} ({LAYER_NAMES[own]}) imports {key} ({LAYER_NAMES[LAYERS[key]]})"
                )
            if module not in DYNAMIC_IMPORTS_ALLOWED and _unreadable_dynamic_imports(path):
                problems.append(f"{module} imports a module by a computed name")
    return problems


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


# --------------------------------------------------------------------------- layers


def test_it_keeps_every_import_at_or_below_its_own_layer():
    assert layer_violations(ROOT) == []


def _plant(root: Path, module: str, source: str) -> None:
    path = root.joinpath(*module.split(".")).with_suffix(".py")
    path.parent.mkdir(parents=True, exist_ok=True)
    for package in (root / "amplify", root / "connectors"):
        package.mkdir(exist_ok=True)
        (package / "__init__.py").touch()
    path.write_text(source, encoding="utf-8")


@pytest.mark.parametrize(
    "source, reached",
    [
        ("import importlib\nimportlib.import_module('amplify.embedded')\n", "amplify.embedded"),
        (
            "from importlib import import_module\nimport_module('amplify.worker')\n",
            "amplify.worker",
        ),
        ("__import__('amplify.notify')\n", "amplify.notify"),
        ("def later():\n    from amplify import notify\n", "amplify.notify"),
        ("from amplify.ui import widgets\n", "amplify.ui"),
        ("from . import worker\n", "amplify.worker"),
    ],
)
def test_it_fails_on_a_planted_upward_import_in_a_domain_module(tmp_path, source, reached):
    _plant(tmp_path, "amplify.queue", source)
    assert layer_violations(tmp_path) == [
        f"amplify.queue (domain) imports {reached} ({LAYER_NAMES[LAYERS[reached]]})"
    ]


def test_it_fails_on_a_connector_that_imports_the_domain(tmp_path):
    _plant(tmp_path, "connectors.planted", "from amplify.workflow import audit\n")
    assert layer_violations(tmp_path) == [
        "connectors.planted (connectors) imports amplify.workflow (domain)",
    ]


def test_it_fails_on_a_dynamic_import_it_cannot_read(tmp_path):
    _plant(
        tmp_path,
        "amplify.workflow",
        "import importlib\nname = 'amplify.worker'\nimportlib.import_module(name)\n",
    )
    assert layer_violations(tmp_path) == ["amplify.workflow imports a module by a computed name"]


def test_it_fails_on_a_module_no_layer_names(tmp_path):
    _plant(tmp_path, "amplify.newthing", "import os\n")
    assert layer_violations(tmp_path) == ["amplify.newthing is in no layer: add it to LAYERS"]


def test_it_lets_a_layer_import_itself_and_below(tmp_path):
    _plant(
        tmp_path,
        "amplify.worker",
        "from amplify import events, notify, publisher\nfrom connectors import registry\n"
        "import importlib\nimportlib.import_module('amplify.queue')\n",
    )
    assert layer_violations(tmp_path) == []
