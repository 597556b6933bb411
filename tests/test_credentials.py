"""Per-call credentials from metadata, with the configured defaults as fallback."""

from __future__ import annotations

import pytest

from bridge.credentials import CallerMetadata, checked_default_key, resolve_credentials
from bridge.errors import Internal, InvalidArgument, Unauthenticated


def resolve(metadata: list[tuple[str, str | bytes]], key: str | None = None, org: str | None = None):  # type: ignore[no-untyped-def]
    return resolve_credentials(metadata, default_api_key=key, default_organization_id=org)


def test_metadata_wins_over_defaults() -> None:
    creds = resolve([("x-api-key", "call-key"), ("x-organization-id", "org-a")], key="cfg", org="cfg-org")
    assert (creds.api_key, creds.organization_id) == ("call-key", "org-a")


def test_bearer_authorization_carries_the_key() -> None:
    assert resolve([("authorization", "Bearer  tok-1 ")]).api_key == "tok-1"


def test_x_api_key_wins_over_authorization_in_any_order() -> None:
    assert resolve([("authorization", "Bearer b"), ("x-api-key", "a")]).api_key == "a"
    assert resolve([("x-api-key", "a"), ("authorization", "Bearer b")]).api_key == "a"


def test_non_bearer_authorization_is_not_a_key() -> None:
    with pytest.raises(Unauthenticated):
        resolve([("authorization", "Basic dXNlcjpwdw==")])


def test_defaults_apply_without_metadata() -> None:
    creds = resolve([], key="cfg", org="cfg-org")
    assert (creds.api_key, creds.organization_id) == ("cfg", "cfg-org")


def test_no_key_anywhere_is_unauthenticated() -> None:
    with pytest.raises(Unauthenticated, match="x-api-key") as error:
        resolve([("x-api-key", "  ")])
    assert error.value.reason == "MISSING_API_KEY"


def test_missing_organization_is_unauthenticated_when_needed() -> None:
    creds = resolve([("x-api-key", "k")])
    with pytest.raises(Unauthenticated, match="x-organization-id"):
        creds.require_organization("streaming task events")


@pytest.mark.parametrize("org", ["a/b", "..", "x y", "o%2F"])
def test_unsafe_organization_names_the_metadata_key(org: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        resolve([("x-api-key", "k"), ("x-organization-id", org)])
    assert error.value.field_violations[0].field == "x-organization-id"


def test_key_is_not_in_repr() -> None:
    assert "s3cret" not in repr(resolve([("x-api-key", "s3cret")]))


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("x-api-key", "abc\r\nx-evil: 1"),
        ("x-api-key", "abc\x00def"),
        ("x-api-key", "abc\x7fdef"),
        ("x-api-key", "in side"),
        ("x-api-key", "k\u00e9y"),
        ("x-api-key", "x" * 513),
        ("x-api-key", b"\xff\xfe"),
        ("authorization", "Bearer abc\ndef"),
        ("authorization", "Bearer k\u00e9y"),
        ("x-organization-id", b"\xff-acme"),
    ],
)
def test_credential_metadata_outside_its_character_set_is_invalid_metadata(
    key: str, value: str | bytes
) -> None:
    with pytest.raises(InvalidArgument) as error:
        resolve([(key, value)], key="default-key")
    assert error.value.reason == "INVALID_METADATA"
    assert [violation.field for violation in error.value.field_violations] == [key]
    shown = value if isinstance(value, str) else value.decode("latin-1")
    assert shown not in error.value.message


def test_surrounding_spaces_are_trimmed_but_a_trailing_newline_is_refused() -> None:
    assert resolve([("x-api-key", " \tkey-1 ")]).api_key == "key-1"
    with pytest.raises(InvalidArgument):
        resolve([("x-api-key", "key-1\n")])


def test_the_parse_collects_every_credential_secret_once() -> None:
    caller = CallerMetadata.parse(
        [
            ("authorization", "Bearer tok-1234567"),
            ("x-bridge-token", "bridge-token-1"),
            ("x-request-id", "r1"),
        ]
    )
    assert (caller.api_key, caller.bridge_token, caller.problem) == ("tok-1234567", "bridge-token-1", None)
    assert caller.secrets == {"Bearer tok-1234567", "tok-1234567", "bridge-token-1"}


def test_a_configured_key_is_stripped_and_checked() -> None:
    assert checked_default_key("  key-from-a-file\n") == "key-from-a-file"
    assert checked_default_key(" \n") is None
    with pytest.raises(ValueError, match="XPANDER_API_KEY") as error:
        checked_default_key("two words")
    assert "two words" not in str(error.value)
    assert resolve([], key="key-from-a-file\n").api_key == "key-from-a-file"
    with pytest.raises(Internal):
        resolve([], key="two words")
