"""The shape of the code: imports only point down, and no area builds on another's routes.

Every module of the portal is read with `ast` (imports inside functions too) and placed on
a floor. A module may import its own floor and the floors below; an area may use another
area's services, queries and forms, never its views; only the app factory imports views.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PORTAL = Path(__file__).resolve().parents[2] / "portal"

#: Floors from the ground up. A name is a module or a package (and all below it).
FLOORS: list[tuple[str, set[str]]] = [
    ("settings", {"portal.config", "portal.extensions"}),
    ("data", {"portal.models"}),
    ("ground floor", {"portal.core"}),
    (
        "shared services",
        {
            "portal.audit",
            "portal.jobs",
            "portal.mail",
            "portal.pagination",
            "portal.reference",
            "portal.search",
            "portal.web",
        },
    ),
    (
        "areas",
        {
            "portal.account",
            "portal.admin",
            "portal.auth",
            "portal.casestudies",
            "portal.exports",
            "portal.feeds",
            "portal.follows",
            "portal.forces",
            "portal.health",
            "portal.insights",
            "portal.library",
            "portal.moderation",
            "portal.outreach",
            "portal.reports",
        },
    ),
    (
        "the app and its commands",
        {
            "portal",
            "portal.cli",
            "portal.accounts",
            "portal.backup",
            "portal.demo",
            "portal.migrate_data",
            "portal.migrations",
        },
    ),
]
AREAS = FLOORS[4][1]


def module_name(path: Path) -> str:
    parts = path.relative_to(PORTAL.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PORTAL.rglob("*.py") if "versions" not in p.parts}


def floor_of(module: str) -> int:
    """Return the floor of a module: the most specific package named in FLOORS."""
    best, best_length = None, -1
    for number, (_, names) in enumerate(FLOORS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_length:
                best, best_length = number, len(name)
    assert best is not None, f"{module} is on no floor: add it to FLOORS"
    return best


def imports_of(module: str) -> set[str]:
    """Return the portal modules that `module` imports, relative imports resolved."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            while name and name not in MODULES:  # a name imported from a module: the module
                name = name.rpartition(".")[0]
            if name.startswith("portal") and name != module:
                found.add(name)
    return found


def area_of(module: str) -> str | None:
    return next((a for a in AREAS if module == a or module.startswith(a + ".")), None)


def test_every_module_is_on_a_floor():
    for module in MODULES:
        floor_of(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_point_down(module):
    upward = [
        f"{module} ({FLOORS[floor_of(module)][0]}) imports {name} ({FLOORS[floor_of(name)][0]})"
        for name in sorted(imports_of(module))
        if floor_of(name) > floor_of(module)
    ]
    assert upward == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_area_builds_on_another_areas_routes(module):
    own = area_of(module)
    borrowed = [
        name
        for name in sorted(imports_of(module))
        if name.endswith(".views") and module != "portal" and area_of(name) != own
    ]
    assert borrowed == [], f"{module} imports routes of another area: {borrowed}"


def test_every_area_keeps_its_routes_in_views():
    for area in sorted(AREAS):
        folder = PORTAL / area.removeprefix("portal.")
        with_routes = sorted(
            path.name
            for path in folder.glob("*.py")
            if "Blueprint(" in path.read_text(encoding="utf-8")
        )
        assert with_routes == ["views.py"], f"{area}: routes in {with_routes}"


def test_the_check_reads_every_kind_of_import():
    """The control: the reader sees relative, absolute and in-function imports, so the tests
    above cannot pass by seeing nothing."""
    assert "portal.core.errors" in imports_of("portal.casestudies.services")  # from ..core...
    assert "portal.auth.sessions" in imports_of("portal.auth.access")  # from .sessions
    assert "portal.casestudies.views" in imports_of("portal")  # inside create_app's steps
    assert floor_of("portal.web.forms") < floor_of("portal.auth.sessions")
