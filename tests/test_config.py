"""Settings: defaults, environment, flags over environment, the platform URL rules (contract §1.1-§1.3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from bridge.config import Settings, events_base_url_for, normalize_base_url, org_in_rest_path, parse_listen


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in Settings.model_fields.values():
        monkeypatch.delenv(str(name.validation_alias), raising=False)


def test_defaults() -> None:
    settings = Settings()
    assert settings.listen == "127.0.0.1:50051"
    assert settings.base_url == "https://inbound.xpander.ai"
    assert settings.api_key is None
    assert settings.organization_id is None
    assert settings.resolved_events_base_url == "https://agent-controller.xpander.ai"
    assert not settings.org_in_rest_path


def test_environment_is_read_and_keywords_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_LISTEN", "0.0.0.0:6000")
    monkeypatch.setenv("XPANDER_BASE_URL", "localhost:9016")
    monkeypatch.setenv("XPANDER_API_KEY", "k-123")
    monkeypatch.setenv("XPANDER_ORGANIZATION_ID", "org-1")
    settings = Settings(listen="127.0.0.1:0")
    assert settings.listen == "127.0.0.1:0"
    assert settings.base_url == "https://localhost:9016"
    assert settings.api_key is not None
    assert settings.api_key.get_secret_value() == "k-123"
    assert settings.organization_id == "org-1"
    assert "k-123" not in repr(settings)
    assert "k-123" not in str(settings)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.listen = "127.0.0.1:1"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"listen": "nohost"}, "listen"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"base_url": "https://"}, "base_url"),
        ({"upstream_read_timeout": 0}, "upstream_read_timeout"),
        ({"sse_backoff_initial": 2, "sse_backoff_max": 1}, None),
    ],
)
def test_bad_values_are_refused(overrides: dict[str, Any], field: str | None) -> None:
    with pytest.raises(ValidationError) as error:
        Settings(**overrides)
    if field is not None:
        assert error.value.errors()[0]["loc"] == (field,)


def test_blank_key_and_organization_mean_unset() -> None:
    settings = Settings(api_key=SecretStr("  "), organization_id=" ")
    assert settings.api_key is None
    assert settings.organization_id is None


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("inbound.xpander.ai", "https://inbound.xpander.ai"),
        ("http://localhost:8181/", "http://localhost:8181"),
        ("https://example.com/base/", "https://example.com/base"),
    ],
)
def test_base_url_normalisation(given: str, normalized: str) -> None:
    assert normalize_base_url(given) == normalized


@pytest.mark.parametrize(
    ("base_url", "with_org"),
    [
        ("https://inbound.xpander.ai", False),
        ("https://agent-controller.xpander.ai", True),
        ("http://localhost:9016", True),
        ("http://localhost:8181", False),
        ("https://example.com/agent-controller/x", True),
    ],
)
def test_org_in_rest_path(base_url: str, with_org: bool) -> None:
    assert org_in_rest_path(base_url) is with_org


@pytest.mark.parametrize(
    ("base_url", "events"),
    [
        ("https://inbound.xpander.ai", "https://agent-controller.xpander.ai"),
        ("https://inbound.stg.xpander.ai", "https://agent-controller.stg.xpander.ai"),
        ("http://localhost:8085", "http://localhost:9016"),
        ("http://127.0.0.1:8085", "http://localhost:9016"),
        ("http://localhost:8181", "http://localhost:8181"),
    ],
)
def test_events_host(base_url: str, events: str) -> None:
    assert events_base_url_for(base_url) == events


def test_events_override_wins() -> None:
    settings = Settings(base_url="https://inbound.xpander.ai", events_base_url="events.example.com/")
    assert settings.resolved_events_base_url == "https://events.example.com"


def test_parse_listen_ipv6() -> None:
    assert parse_listen("[::1]:50051") == ("[::1]", 50051)


def test_operations_settings_are_part_of_settings_with_their_environment_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BRIDGE_WORKERS", "3")
    monkeypatch.setenv("BRIDGE_TOKENS", "ci:0123456789abcdef0123")
    monkeypatch.setenv("BRIDGE_UPSTREAM_MAX_BODY_BYTES", "65536")
    settings = Settings(max_open_streams=7)
    assert (settings.workers, settings.max_open_streams, settings.upstream_max_body_bytes) == (3, 7, 65536)
    assert settings.bridge_tokens is not None
    assert "0123456789abcdef0123" not in repr(settings)
    assert settings.max_concurrent_calls == settings.upstream_max_connections  # shed rather than queue
    with pytest.raises(ValidationError):
        Settings(tls_cert_file="/c.pem")  # type: ignore[arg-type]


# --- The settings tables of docs/operations.md -------------------------------------------------------------

OPERATIONS_DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"


def documented_settings_rows() -> dict[str, tuple[str, str]]:
    """Environment name -> (flag cell, default cell) of each row of the settings tables in OPERATIONS_DOC."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    settings_section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in settings_section.splitlines():
        if not line.startswith(("| `--", "| —")):
            continue
        flag, env, default = (cell.strip() for cell in line.strip("|").split("|")[:3])
        assert env.strip("`") not in rows, f"{env} is documented twice"
        rows[env.strip("`")] = (flag, default)
    return rows


def documented_default(field: Any) -> str:
    default = field.default
    if default is None:
        return "unset"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    if isinstance(default, float) and default.is_integer():
        return f"`{default:g}`"
    return f"`{default}`"


def test_operations_doc_documents_every_setting_with_its_flag_and_default() -> None:
    import argparse

    from bridge.server_cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    flags = {option for action in parser._actions for option in action.option_strings}
    rows = documented_settings_rows()
    assert set(rows) == {str(field.validation_alias) for field in Settings.model_fields.values()}
    for name, field in Settings.model_fields.items():
        flag_cell, default_cell = rows[str(field.validation_alias)]
        flag = "--" + name.replace("_", "-")
        if "SecretStr" in str(field.annotation):
            assert flag_cell == "—", f"{name} is a secret: no flag"
            assert flag not in flags
        else:
            assert flag_cell == f"`{flag}`", name
            assert flag in flags, f"{flag} is documented but serve has no such flag"
        if name != "events_base_url":  # documented as derived from the base URL
            assert default_cell == documented_default(field), name
