"""The package's import order: every module imports only from its own layer or those below.

The layers are the "Imports point down only" line of docs/dev/architecture.md. A module
importing from a higher layer (or an unlisted module) fails here, so that page stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "appliance"

LAYERS: list[set[str]] = [
    {"types", "optics", "loglimit", "rate", "schedule", "localzone", "worker", "screenpower"},
    {"config", "status", "trace"},
    {"camera", "detector", "finder", "gaze", "frames", "hours"},
    {"framewrite", "frameexport"},
    {"display", "health", "service", "traceplot", "framebuild", "configref", "fleetvars"},
    {"app"},
    {"runner"},
    {"cli"},
]
"""Bottom first; a module may import its own layer and any layer below it."""


def _layer(module: str) -> int:
    for i, layer in enumerate(LAYERS):
        if module in layer:
            return i
    raise AssertionError(
        f"appliance.{module} is in no layer of the import order (docs/dev/architecture.md)"
    )


def _top(dotted: str) -> str:
    """``appliance.display.screen`` → ``display``; ``appliance`` → ``""`` (the package)."""
    parts = dotted.split(".")
    return parts[1] if len(parts) > 1 else ""


def _imports(path: Path) -> set[str]:
    """Top-level appliance modules that ``path`` imports at run time (not under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        }:
            typing_only.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("appliance"):
            found.add(_top(node.module))
        elif isinstance(node, ast.Import):
            found.update(_top(a.name) for a in node.names if a.name.startswith("appliance"))
    return found - {""}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).with_suffix("").parts
        if rel == ("__init__",) or rel == ("__main__",):
            continue
        found.append((rel[0], path))
    return found


@pytest.mark.parametrize(("module", "path"), _modules(), ids=lambda v: str(v))
def test_imports_point_down(module: str, path: Path) -> None:
    own = _layer(module)
    upward = sorted(m for m in _imports(path) if m != module and _layer(m) > own)
    assert not upward, f"{path.relative_to(PACKAGE.parent)} imports upward: {upward}"


def test_every_module_is_in_a_layer() -> None:
    for module, _path in _modules():
        _layer(module)


def test_an_upward_import_is_caught(tmp_path: Path) -> None:
    """The check itself: a low module importing the loop is reported."""
    fake = tmp_path / "types.py"
    fake.write_text(
        "from appliance.app import App\nif TYPE_CHECKING:\n    from appliance.cli import main\n"
    )
    assert _imports(fake) == {"app"}
    assert _layer("app") > _layer("types")
