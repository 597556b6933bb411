"""Per-call credentials from metadata, with the configured defaults as fallback."""

from __future__ import annotations

import pytest

from bridge.credentials import resolve_credentials
from bridge.errors import InvalidArgument, Unauthenticated


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
