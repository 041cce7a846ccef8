"""buckets.namespaces.inputs: each rule that turns request JSON into typed values, tested directly."""

from decimal import Decimal

import pytest

from buckets.core import store
from buckets.core.exceptions import InvalidArgument
from buckets.namespaces import inputs
from buckets.namespaces.exceptions import BulkRejected
from kvsite.http.jsonbody import JsonNumber


def refusal(call, *args, **kwargs) -> str:
    with pytest.raises(InvalidArgument) as raised:
        call(*args, **kwargs)
    return raised.value.message


# --- Request bodies ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [[], "x", None, JsonNumber("1")])
def test_a_body_must_be_an_object(body) -> None:
    assert refusal(inputs.body_object, body, allowed=frozenset({"a"})) == "body must be a JSON object"


def test_unknown_body_fields_are_named_with_the_allowed_ones() -> None:
    message = refusal(inputs.body_object, {"b": 1, "a": 1, "c": 2}, allowed=frozenset({"a", "z"}))

    assert message == "unknown field(s) b, c; allowed: a, z"


def test_a_create_body_becomes_the_arguments_of_namespace_create() -> None:
    body = {"name": "n", "applicationId": "app", "description": None, "defaultTtlSeconds": JsonNumber("60")}

    assert inputs.namespace_create_input(body) == {
        "name": "n",
        "application_id": "app",
        "description": "",
        "is_secret": False,
        "default_ttl_seconds": JsonNumber("60"),
    }


def test_an_update_body_names_only_the_fields_it_changes() -> None:
    assert inputs.namespace_update_input({"isSecretNamespace": True, "description": None}) == {
        "is_secret": True,
        "description": None,
    }
    assert inputs.namespace_update_input({}) == {}
    assert "unknown field(s) bucket" in refusal(inputs.namespace_update_input, {"bucket": "x"})


def test_a_put_body_needs_a_value_and_null_is_one() -> None:
    assert refusal(inputs.entry_put_input, {"valueType": "STRING"}) == "value is required"
    assert inputs.entry_put_input({"value": None}) == {
        "value": None,
        "value_type": None,
        "ttl_seconds": None,
        "metadata": None,
        "version": None,
    }
    assert "unknown field(s) keyPath" in refusal(inputs.entry_put_input, {"value": 1, "keyPath": "k"})


def test_rotate_and_rollback_bodies() -> None:
    assert inputs.entry_rotate_input({"value": "new"}) == "new"
    assert refusal(inputs.entry_rotate_input, {}) == "value is required"
    assert inputs.entry_rollback_input({"version": JsonNumber("3")}) == JsonNumber("3")
    assert inputs.entry_rollback_input({}) is None
    assert "unknown field(s) value" in refusal(inputs.entry_rollback_input, {"value": 1})


def test_a_bulk_body_is_counted_before_its_items_are_looked_at() -> None:
    assert inputs.bulk_input({"keys": [None, 1]}, name="keys") == [None, 1]
    assert refusal(inputs.bulk_input, {"keys": []}, name="keys") == "keys must be a non-empty list"
    assert refusal(inputs.bulk_input, {}, name="entries") == "entries must be a non-empty list"
    assert refusal(inputs.bulk_input, {"keys": [0] * 1001}, name="keys") == (
        "keys holds 1001 items; at most 1000 are allowed per call"
    )
    assert "unknown field(s) entries" in refusal(inputs.bulk_input, {"entries": ["k"]}, name="keys")


# --- Namespaces ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "a b", "x" * 65, "é", None, 7])
def test_names_are_plain(name) -> None:
    assert refusal(inputs.check_name, name) == "name must be 1-64 letters, digits, '-' or '_'"


def test_sys_names_are_reserved() -> None:
    assert refusal(inputs.check_name, "SYS_x") == "names starting with SYS_ are reserved"
    assert inputs.check_name("sys_x") == "sys_x"


@pytest.mark.parametrize(
    ("application_id", "message"),
    [
        (None, "applicationId is required"),
        ("  ", "applicationId is required"),
        ("a" * 101, "applicationId must be at most 100 characters without controls"),
        ("a\tb", "applicationId must be at most 100 characters without controls"),
        ("a\udfff", "applicationId has a lone surrogate (such as \\ud800), which is not Unicode text"),
    ],
)
def test_application_ids(application_id, message) -> None:
    assert refusal(inputs.check_application_id, application_id) == message


def test_an_application_id_of_100_characters_is_accepted() -> None:
    assert inputs.check_application_id("a" * 100) == "a" * 100


@pytest.mark.parametrize(
    ("description", "message"),
    [
        (None, "description must be a string of at most 4096 characters"),
        ("d" * 4097, "description must be a string of at most 4096 characters"),
        ("\ud800", "description has a lone surrogate (such as \\ud800), which is not Unicode text"),
        ("a\x00b", "description must not contain NUL characters"),
    ],
)
def test_descriptions(description, message) -> None:
    assert refusal(inputs.check_description, description) == message


def test_is_secret_is_a_boolean() -> None:
    assert inputs.check_is_secret(True) is True
    assert refusal(inputs.check_is_secret, "true") == "isSecretNamespace must be true or false"
    assert refusal(inputs.check_is_secret, JsonNumber("1")) == "isSecretNamespace must be true or false"


@pytest.mark.parametrize(("ttl", "seconds"), [(None, None), (1, 1), (JsonNumber("60.0"), 60)])
def test_ttls_accepted(ttl, seconds) -> None:
    assert inputs.check_ttl(ttl, field="ttlSeconds") == seconds
    assert inputs.check_ttl(store.MAX_TTL_SECONDS, field="ttlSeconds") == store.MAX_TTL_SECONDS


@pytest.mark.parametrize("ttl", [0, -1, store.MAX_TTL_SECONDS + 1, JsonNumber("1.5"), True, "60"])
def test_ttls_refused_name_their_field(ttl) -> None:
    message = refusal(inputs.check_ttl, ttl, field="defaultTtlSeconds")

    assert message == f"defaultTtlSeconds must be null or between 1 and {store.MAX_TTL_SECONDS}"


# --- Entries ---------------------------------------------------------------------------------


def test_key_paths() -> None:
    assert inputs.check_key_path("config/database/url") == "config/database/url"
    assert inputs.check_key_path("rotate") == "rotate"  # one segment is no sub-resource
    assert refusal(inputs.check_key_path, 7) == "keyPath must be a string"
    assert refusal(inputs.check_key_path, "sp ace") == "key may only contain letters, digits and - / _ = . :"
    for key_path in ("a//b", "/a", "a/"):
        assert refusal(inputs.check_key_path, key_path) == (
            "keyPath segments must not be empty (no leading, trailing or double '/')"
        )


@pytest.mark.parametrize("segment", sorted(inputs.RESERVED_SEGMENTS))
def test_a_key_path_may_not_end_in_a_sub_resource(segment) -> None:
    message = refusal(inputs.check_key_path, f"a/{segment}")

    assert message == f"keyPath must not end in /{segment} (a sub-resource of entries)"


@pytest.mark.parametrize(
    ("value", "value_type", "stored"),
    [
        ("text", "STRING", "text"),
        ({"a": 1}, "JSON", {"a": 1}),
        ([1], "JSON", [1]),
        (JsonNumber("1.50"), "NUMBER", JsonNumber("1.50")),
        (False, "BOOLEAN", False),
        ("aGk=", "BINARY", "aGk="),
    ],
)
def test_typed_values_accepted(value, value_type, stored) -> None:
    assert inputs.typed_value(value, value_type) == stored


def test_a_plain_number_is_stored_as_its_literal_text() -> None:
    stored = inputs.typed_value(2.5, "NUMBER")

    assert isinstance(stored, JsonNumber) and str(stored) == "2.5"


def test_binary_comes_back_as_canonical_base64() -> None:
    assert inputs.typed_value("aGl=", "BINARY") == "aGk="


@pytest.mark.parametrize(
    ("value", "value_type", "message"),
    [
        (1, "STRING", "value must be a string for valueType STRING"),
        ("{}", "JSON", "value must be a JSON object or array for valueType JSON"),
        (JsonNumber("NaN"), "NUMBER", "value must be a finite number for valueType NUMBER"),
        (True, "NUMBER", "value must be a finite number for valueType NUMBER"),
        ("true", "BOOLEAN", "value must be true or false for valueType BOOLEAN"),
        (1, "BINARY", "value must be a base64 string for valueType BINARY"),
        ("a-b_", "BINARY", "value must be base64 for valueType BINARY"),
        ("abc", "BINARY", "value must be base64 for valueType BINARY"),
    ],
)
def test_typed_values_refused(value, value_type, message) -> None:
    assert refusal(inputs.typed_value, value, value_type) == message


@pytest.mark.parametrize("value_type", [None, "string", "DATE"])
def test_an_unknown_value_type_is_refused(value_type) -> None:
    message = refusal(inputs.typed_value, "x", value_type)

    assert message == "valueType must be one of STRING, JSON, NUMBER, BOOLEAN, BINARY"


def test_metadata() -> None:
    deepest: dict = {}
    for _ in range(15):
        deepest = {"a": deepest}

    assert inputs.check_metadata(None) == {}
    assert inputs.check_metadata(deepest) is deepest
    assert refusal(inputs.check_metadata, ["a"]) == "metadata must be a JSON object"
    assert refusal(inputs.check_metadata, {"a": deepest}) == "metadata is nested too deeply"


def test_versions() -> None:
    assert inputs.check_version(None) is None
    assert inputs.check_version(JsonNumber("3")) == 3
    for version in (0, -1, JsonNumber("1.5"), "1", True):
        assert refusal(inputs.check_version, version) == "version must be a positive integer"


def test_a_rollback_needs_its_version() -> None:
    assert inputs.check_rollback_version(JsonNumber("2")) == 2
    assert refusal(inputs.check_rollback_version, None) == 'body must be {"version": <positive integer>}'
    assert refusal(inputs.check_rollback_version, 0) == "version must be a positive integer"


def test_an_entry_is_checked_field_by_field_in_order() -> None:
    def first_refused(**overrides) -> str:
        fields = {"key_path": "a", "value": "v", "value_type": "STRING", **overrides}
        return refusal(inputs.check_entry, **fields)

    everything_wrong = {"key_path": "a//b", "value_type": "NOPE", "metadata": [], "ttl_seconds": 0, "version": 0}

    assert first_refused(**everything_wrong).startswith("keyPath segments must not be empty")
    assert first_refused(**{**everything_wrong, "key_path": "a"}).startswith("valueType must be one of")
    assert first_refused(metadata=[], ttl_seconds=0, version=0) == "metadata must be a JSON object"
    assert first_refused(ttl_seconds=0, version=0).startswith("ttlSeconds must be null or between 1 and")
    assert first_refused(version=0) == "version must be a positive integer"


def test_a_checked_entry_holds_the_typed_values() -> None:
    checked = inputs.check_entry(
        key_path="a/b", value=JsonNumber("7"), value_type="NUMBER", ttl_seconds=JsonNumber("30"), version=1
    )

    assert checked == inputs.EntryWrite(
        key_path="a/b", value_type="NUMBER", value=Decimal(7), metadata={}, ttl_seconds=30, version=1
    )


# --- Listing ---------------------------------------------------------------------------------


def test_page_limits() -> None:
    assert inputs.check_page_limit(1) == 1
    assert inputs.check_page_limit(inputs.MAX_PAGE) == inputs.MAX_PAGE
    for limit in (0, inputs.MAX_PAGE + 1):
        assert refusal(inputs.check_page_limit, limit) == f"limit must be between 1 and {inputs.MAX_PAGE}"


def test_prefixes_are_whole_segments_without_a_trailing_slash() -> None:
    assert inputs.check_prefix(None) == ""
    assert inputs.check_prefix("config/data/") == "config/data"
    assert inputs.check_prefix("/") == ""
    assert refusal(inputs.check_prefix, "a//b").startswith("keyPath segments must not be empty")


# --- Bulk ------------------------------------------------------------------------------------


def test_bulk_keys_name_every_refused_key() -> None:
    with pytest.raises(BulkRejected) as raised:
        inputs.check_bulk_keys(["a", 7, "a", "b//c", "b"], operation="delete")

    assert raised.value.message == "bulk delete: 3 of 5 item(s) refused; nothing was written"
    assert [(e["index"], e["keyPath"], e["error"]) for e in raised.value.details["errors"]] == [
        (1, "", "keyPath must be a string"),
        (2, "a", "keyPath appears more than once"),
        (3, "b//c", "keyPath segments must not be empty (no leading, trailing or double '/')"),
    ]
    assert inputs.check_bulk_keys(["a", "b"], operation="get") == ["a", "b"]


def test_bulk_entries_name_every_refused_item() -> None:
    items = [
        {"keyPath": "a", "value": "1", "valueType": "STRING"},
        "a",
        {"keyPath": "b", "value": "1", "valueType": "STRING", "ttl": 1},
        {"keyPath": "c", "valueType": "STRING"},
        {"keyPath": "a", "value": "2", "valueType": "STRING"},
        {"keyPath": "d", "value": "x", "valueType": "NUMBER"},
    ]

    with pytest.raises(BulkRejected) as raised:
        inputs.check_bulk_entries(items)

    assert raised.value.message == "bulk set: 5 of 6 item(s) refused; nothing was written"
    assert [(e["index"], e["keyPath"], e["error"]) for e in raised.value.details["errors"]] == [
        (1, "", "each entry must be an object {keyPath, value, valueType, ...}"),
        (2, "b", "unknown field(s) ttl"),
        (3, "c", "value is required"),
        (4, "a", "keyPath appears more than once"),
        (5, "d", "value must be a finite number for valueType NUMBER"),
    ]


def test_bulk_entries_become_checked_writes() -> None:
    writes = inputs.check_bulk_entries(
        [{"keyPath": "a", "value": "1", "valueType": "STRING", "metadata": {"m": 1}, "version": JsonNumber("2")}]
    )

    assert writes == [
        inputs.EntryWrite(key_path="a", value_type="STRING", value="1", metadata={"m": 1}, ttl_seconds=None, version=2)
    ]
