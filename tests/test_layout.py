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
# core, which every layer may use.
DIALECTS = (
    "buckets.api",
    "buckets.namespaces",
    "buckets.items",
    "buckets.configs",
    "buckets.configs.consumers",
    "buckets.configs.merge_patch",
    "buckets.watch",
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
    ("buckets.core", DIALECTS, "the storage core serves every dialect and imports none"),
    ("buckets.items", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("buckets.namespaces", DIALECTS, "a dialect stands on the core alone: dialects never import each other"),
    ("kvsite.http", DIALECTS, "HTTP plumbing serves every dialect and knows none"),
    ("kvsite.access", DIALECTS, "access is decided the same way for every dialect, so it knows none"),
    ("buckets", ("kvsite.dashboard",), "the dashboard sits on top; only the URL conf includes it"),
    ("secrets_app", ("kvsite.dashboard",), "the dashboard sits on top; only the URL conf includes it"),
]

# Imports the rules let pass until the step named removes them: module -> the names it may import.
PENDING = {
    # Sealing moves into the core: secrets_app/crypto.py becomes part of buckets/core/ (#15).
    "buckets.namespaces.records": {"secrets_app", "secrets_app.crypto"},
}


@pytest.mark.parametrize(("layer", "forbidden", "why"), RULES, ids=[rule[0] for rule in RULES])
def test_import_contract(layer: str, forbidden: tuple[str, ...], why: str) -> None:
    broken = sorted(
        f"{module} imports {name}"
        for module, path in project_modules().items()
        if within(module, layer)
        for name in imported(path)
        if any(within(name, package) for package in forbidden)
        and not within(name, layer)
        and name not in PENDING.get(module, ())
    )

    assert broken == [], f"{why}:\n" + "\n".join(broken)


def test_every_pending_import_is_still_made() -> None:
    # Once the step is done, its exception goes too, so the rule holds in full again.
    stale = sorted(
        f"{module} imports {name}"
        for module, names in PENDING.items()
        for name in names
        if module not in project_modules() or name not in imported(project_modules()[module])
    )

    assert stale == []


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
