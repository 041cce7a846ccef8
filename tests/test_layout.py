"""Import contracts: the layering the README describes, checked from the sources, so it cannot erode quietly.

Every ``import`` and ``from … import`` of the project's modules is read with ``ast``
(function-level imports included), and each rule names the modules that may not
import a package. More rules join as the layout work moves code into its folders.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kvsite", "buckets", "secrets_app")
# The front doors, named module by module until each has its folder; buckets/core/ is the storage
# core, which every layer may use, and buckets/watch/ the watch protocol the dialects share.
DIALECTS = (
    "buckets.namespaces",
    "buckets.items",
    "buckets.configs",
    "buckets.kv",
    "secrets_app",
    "kvsite.dashboard",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {
        module_name(path): path
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        if "migrations" not in path.parts
    }


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, by its full name (``from a import b`` counts as ``a`` and ``a.b``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


RULES = [
    # (the modules the rule is about, the packages they may not import, why)
    (
        "buckets.core",
        (*DIALECTS, "kvsite"),
        "the storage core is the bottom layer: no dialect, no interface, nothing of kvsite/ (which stands on it)",
    ),
    ("buckets.items", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("buckets.configs", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("buckets.kv", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("buckets.watch", DIALECTS, "the watch protocol serves every dialect's WebSocket and knows none"),
    ("buckets.namespaces", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("kvsite.http", DIALECTS, "HTTP plumbing serves every dialect and knows none"),
    ("kvsite.access", DIALECTS, "access is decided the same way for every dialect, so it knows none"),
    ("buckets", ("kvsite.dashboard",), "the dashboard sits on top; only the URL conf includes it"),
    ("secrets_app", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
]


@pytest.mark.parametrize(("layer", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_import_contract(layer: str, forbidden: tuple[str, ...], why: str) -> None:
    broken = sorted(
        f"{module} imports {name}"
        for module, path in project_modules().items()
        if within(module, layer)
        for name in imported(path)
        if any(within(name, package) for package in forbidden) and not within(name, layer)
    )

    assert broken == [], f"{why}:\n" + "\n".join(broken)


def test_only_the_url_conf_imports_the_dashboard() -> None:
    importers = sorted(
        module
        for module, path in project_modules().items()
        if not within(module, "kvsite.dashboard") and any(within(name, "kvsite.dashboard") for name in imported(path))
    )
    including = sorted(
        module
        for module, path in project_modules().items()
        if not within(module, "kvsite.dashboard") and '"kvsite.dashboard.urls"' in path.read_text()
    )

    assert importers == []
    assert including == ["kvsite.urls"]


def test_the_contracts_see_the_imports_they_judge() -> None:
    # A rule that reads nothing passes for the wrong reason: the reader must find a known import.
    assert "kvsite.http.errors" in imported(ROOT / "kvsite" / "http" / "bodies.py")
    assert {"kvsite.http", "kvsite.access", "buckets.core"} <= set(project_modules())
    # A rule about a package that moved away would judge nothing.
    assert {layer for layer, _, _ in RULES} <= set(project_modules())
