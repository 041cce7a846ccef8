"""mypy's settings keep unparsed request data away from the core: a view cannot hand a service ``Any``.

Plain strict mode lets ``request.data["name"]`` (``Any``) reach a ``str`` parameter silently. The
access views (``kvsite/access/audit_api.py``, ``tickets_api.py``) are therefore checked with no
expression of type ``Any`` allowed (``pyproject.toml``). These tests run mypy on throw-away view
modules under the very options ``pyproject.toml`` gives those views, read from it: a view that
passes ``request.data["name"]`` to the core is refused, and one that parses it first passes.

mypy shares the project's ``.mypy_cache``: after ``make test``'s own mypy run, each run takes seconds.
"""

import json
import tomllib
from pathlib import Path

import pytest
from mypy import api

ROOT = Path(__file__).resolve().parent.parent
VIEWS = {"kvsite.access.audit_api", "kvsite.access.tickets_api"}
PROBE = "kvsite_types_probe_view"

RAW_VIEW = """\
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buckets.core import store


class ProbeApi(APIView):
    def get(self, request: Request) -> Response:
        store.bucket_get(name=request.data["name"])
        return Response(status=204)
"""

PARSED_VIEW = """\
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from buckets.core import store
from kvsite_types_probe_inputs import name_input


class ProbeApi(APIView):
    def get(self, request: Request) -> Response:
        store.bucket_get(name=name_input(request))
        return Response(status=204)
"""

# The parsing module (a dialect's ``inputs``): it reads the request, so it is not under the views' options.
INPUTS = """\
from rest_framework.request import Request

from buckets.core.exceptions import InvalidArgument


def name_input(request: Request) -> str:
    name = request.data.get("name")
    if not isinstance(name, str):
        raise InvalidArgument("name must be a string")
    return name
"""


def project_tool() -> dict:
    """pyproject.toml's [tool] table: mypy's options and django-stubs'."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]


def view_options() -> dict[str, object]:
    """The per-module options pyproject.toml gives the access views."""
    overrides = [o for o in project_tool()["mypy"]["overrides"] if set(o["module"]) >= VIEWS]
    assert len(overrides) == 1, "the access views should share one override in pyproject.toml"
    return {name: value for name, value in overrides[0].items() if name != "module"}


def toml_table(name: str, values: dict[str, object]) -> str:
    # Booleans, strings and lists of strings, all this needs, are written alike in JSON and TOML.
    return f"[{name}]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def run_mypy(tmp_path: Path, view: str, *, with_view_options: bool = True) -> tuple[str, int]:
    """mypy, configured as the project's, on the throw-away view ``view`` (plus the parsing module)."""
    tool = project_tool()
    base = {name: value for name, value in tool["mypy"].items() if name not in ("files", "overrides")}
    base |= {"mypy_path": str(ROOT), "cache_dir": str(ROOT / ".mypy_cache")}
    overrides = list(tool["mypy"]["overrides"])
    if with_view_options:
        overrides.append({"module": [PROBE], **view_options()})
    (tmp_path / f"{PROBE}.py").write_text(view)
    (tmp_path / "kvsite_types_probe_inputs.py").write_text(INPUTS)
    config = tmp_path / "pyproject.toml"
    config.write_text(
        toml_table("tool.mypy", base)
        + "".join("\n" + toml_table("[tool.mypy.overrides]", override) for override in overrides)
        + "\n"
        + toml_table("tool.django-stubs", tool["django-stubs"])
    )
    stdout, stderr, status = api.run(
        ["--config-file", str(config), str(tmp_path / f"{PROBE}.py"), str(tmp_path / "kvsite_types_probe_inputs.py")]
    )
    assert "error: " not in stderr, stderr
    return stdout, status


def test_the_access_views_allow_no_any() -> None:
    assert view_options().get("disallow_any_expr") is True


@pytest.mark.parametrize("with_view_options", [True, False], ids=["view options", "plain strict"])
def test_request_data_fed_to_a_core_str_parameter(tmp_path: Path, with_view_options: bool) -> None:
    # Given a view that passes request.data["name"] (Any) to store.bucket_get(*, name: str)
    # When mypy checks it
    output, status = run_mypy(tmp_path, RAW_VIEW, with_view_options=with_view_options)

    # Then the views' options refuse that line; plain strict mode lets it through (the hole they close)
    if with_view_options:
        assert status == 1, output
        assert f'{PROBE}.py:10: error: Expression has type "Any"' in output, output
    else:
        assert status == 0, output


def test_a_view_that_parses_first_passes(tmp_path: Path) -> None:
    # Given a view that hands the core what an inputs function parsed into a str
    # When mypy checks it under the views' options
    output, status = run_mypy(tmp_path, PARSED_VIEW)

    # Then it is clean
    assert status == 0, output
    assert "Success: no issues found in 2 source files" in output
