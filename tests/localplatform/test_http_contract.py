"""Errors, keys, organization prefixes and agents: the parts of the HTTP contract every route shares."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.localplatform import LocalPlatform
from tests.localplatform.helpers import ORG, create, events_path, read_stream, types

KEY = "secret-key"


@pytest.fixture
async def keyed() -> AsyncIterator[httpx.AsyncClient]:
    """A client of a platform that accepts only `KEY`; the client sends no key by itself."""
    async with (
        LocalPlatform(api_keys=[KEY, "other-key"], step_delay=0.001) as platform,
        httpx.AsyncClient(base_url=platform.url) as http,
    ):
        yield http


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"", "malformed JSON"),
        (b"{", "malformed JSON"),
        (b"{'input': 1}", "malformed JSON"),
    ],
)
async def test_malformed_json_is_400(client: httpx.AsyncClient, body: bytes, detail: str) -> None:
    resp = await client.post("/agent-execution/demo-agent", content=body)
    assert resp.status_code == 400
    assert resp.headers["content-type"] == "application/json"
    assert detail in resp.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ([], "body"),
        ({"events_streaming": "yes"}, "events_streaming"),
        ({"tool_call_limit": "3"}, "tool_call_limit"),
        ({"input": {"text": 7}}, "input.text"),
        ({"input": {"user": {"id": "u"}}}, "input.user.email"),
        ({"output_format": "html"}, "output_format"),
        ({"think_mode": None}, "think_mode"),
        ({"llm_reasoning_effort": "max"}, "llm_reasoning_effort"),
        ({"mcp_servers": [{"transport": "carrier-pigeon"}]}, "mcp_servers.0.transport"),
        ({"input": {"principal": {"kind": "user", "id": "a:b"}}}, "input.principal.id"),
        ({"input": {"attachments": [{"name": "no url"}]}}, "input.attachments.0.url"),
    ],
)
async def test_wrong_types_are_422_naming_the_field(
    client: httpx.AsyncClient, body: object, field: str
) -> None:
    resp = await client.post("/agent-execution/demo-agent", json=body)
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith(f"{field}: ")


async def test_update_validation(client: httpx.AsyncClient) -> None:
    task = await create(client, "x", events_streaming=False)
    path = f"/agent-execution/{task['id']}/update"
    assert (await client.patch(path, content=b"nope")).status_code == 400
    resp = await client.patch(path, json={"status": "running"})
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("status: ")
    resp = await client.patch(path, json={"tokens": {"prompt_tokens": "many"}})
    assert resp.status_code == 422
    assert resp.json()["detail"].startswith("tokens.prompt_tokens: ")


async def test_unknown_paths_and_methods_are_json_and_never_redirect(client: httpx.AsyncClient) -> None:
    for path in ("/nope", "/agents/list/", "/agent-execution/x/status/", "//agents/list"):
        resp = await client.get(path)
        assert resp.status_code == 404, path
        assert resp.json() == {"detail": "Not Found"}
    resp = await client.put("/agents/list")
    assert resp.status_code == 405
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["allow"] == "GET"
    counts = (await client.get("/_local/stats")).json()["requests"]
    assert counts["unmatched"] == {"404": 4, "405": 1}


async def test_oversized_body_is_413_json(client: httpx.AsyncClient) -> None:
    resp = await client.post("/agent-execution/demo-agent", content=b" " * (2 * 1024 * 1024))
    assert resp.status_code == 413
    assert resp.headers["content-type"] == "application/json"


async def test_without_configured_keys_any_key_or_none_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await client.get("/agents/list")).status_code == 200
    assert (await client.get("/agents/list", headers={"x-api-key": "whatever"})).status_code == 200


async def test_missing_key_is_401_and_wrong_key_403_on_every_route(keyed: httpx.AsyncClient) -> None:
    task = (await keyed.post("/agent-execution/demo-agent", json={}, headers={"x-api-key": KEY})).json()
    paths = [
        ("POST", "/agent-execution/demo-agent"),
        ("GET", f"/agent-execution/{task['id']}/status"),
        ("PATCH", f"/agent-execution/{task['id']}/update"),
        ("DELETE", f"/agent-execution/{task['id']}"),
        ("GET", "/agent-execution/executions/history/demo-agent"),
        ("GET", "/agent-execution/executions/history/user/u"),
        ("GET", "/agents/list"),
        ("GET", "/agents/demo-agent"),
        ("GET", events_path(task["id"])),
    ]
    for method, path in paths:
        body: dict[str, object] | None = {} if method in ("POST", "PATCH") else None
        missing = await keyed.request(method, path, json=body)
        assert (missing.status_code, missing.json()) == (401, {"detail": "missing x-api-key header"}), path
        wrong = await keyed.request(method, path, json=body, headers={"x-api-key": "bad"})
        assert (wrong.status_code, wrong.json()) == (403, {"detail": "invalid API key"}), path
    assert (await keyed.get("/agents/list", headers={"x-api-key": "other-key"})).status_code == 200
    # Test controls need no key.
    assert (await keyed.get("/_local/stats")).status_code == 200


async def test_every_route_is_served_with_and_without_the_organization(client: httpx.AsyncClient) -> None:
    for prefix in ("", f"/{ORG}"):
        created = await client.post(f"{prefix}/agent-execution/demo-agent", json={"events_streaming": True})
        assert created.status_code == 200
        task_id = created.json()["id"]
        for method, path in [
            ("GET", f"/agent-execution/{task_id}/status"),
            ("PATCH", f"/agent-execution/{task_id}/update"),
            ("GET", "/agent-execution/executions/history/demo-agent"),
            ("GET", "/agent-execution/executions/history/user/u"),
            ("GET", "/agents/list"),
            ("GET", "/agents/demo-agent"),
            ("DELETE", f"/agent-execution/{task_id}"),
        ]:
            resp = await client.request(method, prefix + path, json={} if method == "PATCH" else None)
            assert resp.status_code == 200, prefix + path
        async with client.stream("GET", f"{prefix}/agent-execution/{task_id}/events") as stream:
            assert stream.status_code == 200
            assert "task_finished" in (await stream.aread()).decode()


async def test_a_foreign_organization_is_403(client: httpx.AsyncClient) -> None:
    task = await create(client)
    resp = await client.get(events_path(task["id"], org="other-org"))
    assert resp.status_code == 403
    assert resp.headers["content-type"] == "application/json"
    assert "other-org" in resp.json()["detail"]
    assert (await client.get(f"/other-org/agent-execution/{task['id']}/status")).status_code == 403
    assert (await client.get("/other-org/agents/list")).status_code == 403
    assert types(await read_stream(client, task["id"]))[-1] == "task_finished"


async def test_agents_list_and_get(client: httpx.AsyncClient) -> None:
    listed = (await client.get("/agents/list")).json()
    assert [agent["id"] for agent in listed] == ["demo-agent", "echo-agent"]
    for item in listed:
        assert {
            "id",
            "name",
            "icon",
            "instructions",
            "status",
            "organization_id",
            "created_at",
        } <= item.keys()
        assert item["status"] == "ACTIVE"
        assert item["organization_id"] == ORG
        assert item["icon"]
    agent = (await client.get("/agents/echo-agent")).json()
    required = {"id", "organization_id", "name", "unique_name", "framework", "model_provider", "model_name"}
    assert required <= agent.keys()
    assert (agent["graph"], agent["tools"], agent["version"]) == ([], [], 1)
    assert "environment_id" not in agent  # the SDK rejects an explicit null here
