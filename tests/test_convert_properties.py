"""Property-based checks: any valid request makes a body of the platform's shape; any bad input is refused
with the field named; no platform JSON makes a conversion fail other than with PayloadError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.provisional import domains
from jsonschema import Draft202012Validator

from bridge.convert import (
    PayloadError,
    create_task_to_platform,
    event_from_platform,
    list_tasks_to_platform,
    task_from_platform,
    validate_resource_id,
)
from bridge.convert.enums import TASK_EVENT_TYPE
from bridge.errors import InvalidArgument
from xpander.bridge.v1 import task_pb2, task_service_pb2

GOLDEN = Path(__file__).parent / "golden"
BODY_SCHEMA = Draft202012Validator(json.loads((GOLDEN / "create_body.schema.json").read_text()))
FULL_TASK: dict[str, Any] = json.loads((GOLDEN / "task_full.json").read_text())

Request = task_service_pb2.CreateTaskRequest
# jsonschema compiles its meta-schemas on first use; a per-example deadline would make that flaky.
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow], max_examples=100)

# ---------------------------------------------------------------------------------------------- strategies

# What str.isprintable() refuses: control, format, surrogate, private, unassigned and separator characters.
NOT_PRINTABLE: list[Any] = ["Cc", "Cf", "Cs", "Co", "Cn", "Zs", "Zl", "Zp"]
PRINTABLE = st.characters(codec="utf-8", exclude_categories=NOT_PRINTABLE)
SAFE_IDS = st.text(
    st.characters(codec="utf-8", exclude_categories=NOT_PRINTABLE, exclude_characters="/?#%\\"),
    min_size=1,
    max_size=40,
).filter(lambda s: s not in (".", ".."))
HOSTS = st.one_of(
    domains(max_length=60),
    st.just("localhost"),
    st.tuples(*[st.integers(0, 255)] * 4).map(lambda parts: ".".join(map(str, parts))),
    st.just("[::1]"),
)
URLS = st.builds(
    "{}://{}{}{}".format,
    st.sampled_from(["http", "https", "HTTP", "Https"]),
    HOSTS,
    st.one_of(st.just(""), st.integers(1, 65535).map(":{}".format)),
    st.text("abcXYZ019-._~/%?=&#", max_size=24).map(lambda path: "/" + path),
)
EMAILS = st.emails(domains=domains(max_length=60))
OPTIONAL_TEXT = st.none() | st.text(max_size=24)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
JSON_OBJECTS = st.dictionaries(st.text(max_size=8), JSON_VALUES, max_size=5)
VALID_SCHEMAS: list[dict[str, Any]] = [
    {},
    {"type": "object"},
    {"type": "object", "properties": {"summary": {"type": "string"}}, "required": ["summary"]},
    {"type": "array", "items": {"type": "integer", "minimum": 0}, "maxItems": 10},
    {"$schema": "http://json-schema.org/draft-07/schema#", "enum": ["a", "b"]},
]
SCHEMAS: st.SearchStrategy[dict[str, Any]] = st.one_of(
    st.sampled_from(VALID_SCHEMAS),
    st.fixed_dictionaries(
        {"type": st.sampled_from(["string", "number", "integer", "boolean", "null", "object", "array"])},
        optional={"description": st.text(max_size=20), "title": st.text(max_size=20)},
    ),
)


def struct(value: dict[str, Any]) -> struct_pb2.Struct:
    result = struct_pb2.Struct()
    result.update(value)
    return result


def enum_values(enum: Any) -> st.SearchStrategy[Any]:
    return st.sampled_from(list(enum.values()))


OPTIONAL_STRING_FIELDS = (
    "source",
    "worker_id",
    "additional_context",
    "instructions_override",
    "test_run_node_id",
    "user_oidc_token",
    "expected_output",
    "triggering_agent_id",
    "title",
    "llm_model_provider",
    "llm_model_name",
    "permission_mode",
)


@st.composite
def users(draw: st.DrawFn) -> task_pb2.User:
    user = task_pb2.User(email=draw(EMAILS))
    for field in ("id", "first_name", "last_name", "timezone"):
        value = draw(OPTIONAL_TEXT)
        if value is not None:
            setattr(user, field, value)
    if draw(st.booleans()):
        user.additional_attributes.CopyFrom(struct(draw(JSON_OBJECTS)))
    return user


@st.composite
def mcp_servers(draw: st.DrawFn) -> task_pb2.MCPServerDetails:
    server = task_pb2.MCPServerDetails(
        type=draw(enum_values(task_pb2.MCPServerType)),
        transport=draw(enum_values(task_pb2.MCPServerTransport)),
        auth_type=draw(enum_values(task_pb2.MCPServerAuthType)),
        sso_token=draw(enum_values(task_pb2.MCPServerSSOTokenMode)),
        headers=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
        env_vars=draw(st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)),
        allowed_tools=draw(st.lists(st.text(max_size=8), max_size=3)),
        additional_scopes=draw(st.lists(st.text(max_size=8), max_size=3)),
    )
    if server.type == task_pb2.MCP_SERVER_TYPE_LOCAL:
        server.command = draw(st.text(PRINTABLE, min_size=1, max_size=20))
    else:
        server.url = draw(URLS)
    for field in ("id", "name", "api_key", "client_id", "client_secret", "sso_audience"):
        value = draw(OPTIONAL_TEXT)
        if value is not None:
            setattr(server, field, value)
    for field in ("use_secrets_manager", "share_user_token_across_other_agents"):
        flag = draw(st.none() | st.booleans())
        if flag is not None:
            setattr(server, field, flag)
    return server


@st.composite
def attachments(draw: st.DrawFn) -> task_pb2.Attachment:
    attachment = task_pb2.Attachment(url=draw(URLS), kind=draw(enum_values(task_pb2.AttachmentKind)))
    for field in ("name", "mime", "sha256", "expires_at", "source", "transcript"):
        value = draw(OPTIONAL_TEXT)
        if value is not None:
            setattr(attachment, field, value)
    size = draw(st.none() | st.integers(0, 2**63 - 1))
    if size is not None:
        attachment.size = size
    return attachment


@st.composite
def principals(draw: st.DrawFn) -> task_pb2.Principal:
    kind = draw(st.sampled_from(list(task_pb2.PrincipalKind.values())[1:]))
    padding = draw(st.sampled_from(["", " ", "\t"]))
    principal_id = draw(
        st.text(
            st.characters(codec="utf-8", exclude_categories=NOT_PRINTABLE, exclude_characters=":"),
            min_size=1,
            max_size=20,
        )
    )
    principal = task_pb2.Principal(kind=kind, id=padding + principal_id + padding)
    for field in ("email", "display_name"):
        value = draw(OPTIONAL_TEXT)
        if value is not None:
            setattr(principal, field, value)
    return principal


@st.composite
def valid_requests(draw: st.DrawFn) -> Request:
    """Any CreateTaskRequest the bridge must accept."""
    request = Request(
        agent_id=draw(SAFE_IDS),
        prompt=draw(st.text(max_size=40)),
        file_urls=draw(st.lists(URLS, max_size=3)),
        run_locally=draw(st.booleans()),
        events_streaming=draw(st.booleans()),
        disable_attachment_injection=draw(st.booleans()),
        return_metrics=draw(st.booleans()),
        output_format=draw(enum_values(task_pb2.OutputFormat)),
        think_mode=draw(enum_values(task_pb2.ThinkMode)),
        llm_reasoning_effort=draw(enum_values(task_pb2.LLMReasoningEffort)),
        mcp_servers=draw(st.lists(mcp_servers(), max_size=3)),
        attachments=draw(st.lists(attachments(), max_size=2)),
    )
    for field in OPTIONAL_STRING_FIELDS:
        value = draw(OPTIONAL_TEXT)
        if value is not None:
            setattr(request, field, value)
    existing = draw(st.none() | SAFE_IDS)
    if existing is not None:
        request.existing_task_id = existing
    version = draw(st.none() | st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=8))
    if version is not None:
        request.agent_version = version
    harness = draw(st.none() | st.sampled_from(["claude-code", " Codex", "OPENCODE ", "xpander", "", "  "]))
    if harness is not None:
        request.harness_cli = harness
    limit = draw(st.none() | st.integers(0, 2**63 - 1))
    if limit is not None:
        request.tool_call_limit = limit
    if draw(st.booleans()):
        request.user_details.CopyFrom(draw(users()))
    if draw(st.booleans()):
        request.principal.CopyFrom(draw(principals()))
    for field in ("tool_call_payload_extension", "user_tokens"):
        if draw(st.booleans()):
            getattr(request, field).CopyFrom(struct(draw(JSON_OBJECTS)))
    if request.output_format == task_pb2.OUTPUT_FORMAT_JSON and draw(st.booleans()):
        request.output_schema.CopyFrom(struct(draw(SCHEMAS)))
    return request


BAD_ID_CHARS = [
    *"/?#%\\",
    " ",
    "\t",
    "\n",
    "\r",
    "\x00",
    "\x1f",
    "\x7f",
    "\x85",
    "\xa0",
    "\u200b",
    "\u2028",
    "\ufeff",
]
INVALID_IDS = st.one_of(
    st.sampled_from(["", ".", ".."]),
    st.integers(257, 400).map(lambda length: ("id-" * length)[:length]),
    st.builds(
        "{}{}{}".format, st.text(PRINTABLE, max_size=8), st.sampled_from(BAD_ID_CHARS), st.text(max_size=8)
    ),
)


@st.composite
def with_inserted(draw: st.DrawFn, valid: st.SearchStrategy[str], characters: list[str]) -> str:
    text = draw(valid)
    position = draw(st.integers(0, len(text)))
    return text[:position] + draw(st.sampled_from(characters)) + text[position:]


SPACE_OR_CONTROL = [" ", "\t", "\n", "\r", "\x00", "\x7f", "\xa0", "\u2028", "\u200b"]
INVALID_URLS = st.one_of(
    st.just(""),
    st.builds(
        "{}://{}/{}".format,
        st.sampled_from(["ftp", "file", "ws", "wss", "javascript", "mailto", "data", "httpx", "htp", "h"]),
        HOSTS,
        st.text("abc/", max_size=8),
    ),
    st.builds(
        "{}{}".format, st.sampled_from(["/", "//", "", "./", "example.com/"]), st.text("abc/", max_size=8)
    ),
    st.builds(
        "{}{}".format,
        st.sampled_from(["http://", "https://", "http:", "https:"]),
        st.sampled_from(["", "/p", ":80", "@/x", "?q=1", "#f"]),
    ),
    st.builds("http://{}:{}/".format, HOSTS, st.sampled_from(["99999", "-1", "port", "80a"])),
    st.sampled_from(["http://[::1/", "https://[bad]/"]),
    with_inserted(URLS, SPACE_OR_CONTROL),
)
INVALID_EMAILS = st.one_of(
    st.text(
        st.characters(codec="utf-8", exclude_categories=NOT_PRINTABLE, exclude_characters="@"), max_size=20
    ),
    st.builds("@{}".format, domains()),
    st.builds(
        "{}@".format,
        st.text(
            st.characters(codec="utf-8", exclude_categories=NOT_PRINTABLE, exclude_characters="@"),
            min_size=1,
            max_size=10,
        ),
    ),
    st.builds("a@{}".format, st.sampled_from([".com", "b..c", "b.", "-b.com", "b-.com", "b.c@d"])),
    st.builds("{}@{}".format, st.text("abc", min_size=65, max_size=70), domains()),
    with_inserted(EMAILS, SPACE_OR_CONTROL),
)
INVALID_SCHEMAS = st.sampled_from(
    [
        {"type": "strnig"},
        {"type": 5},
        {"minLength": -1},
        {"maxItems": "ten"},
        {"required": "summary"},
        {"properties": []},
        {"pattern": "(unclosed"},
        {"enum": "abc"},
        {"allOf": {}},
        {"$schema": 5},
        {"additionalProperties": "no"},
    ]
).flatmap(
    lambda bad: st.sampled_from(
        [
            bad,
            {"type": "object", "properties": {"inner": bad}},
            {"type": "array", "items": bad},
            {"anyOf": [bad]},
        ]
    )
)


def violated_fields(request: Request) -> set[str]:
    with pytest.raises(InvalidArgument) as caught:
        create_task_to_platform(request)
    return {violation.field for violation in caught.value.field_violations}


# ---------------------------------------------------------------------------------------------- properties


@SETTINGS
@given(valid_requests())
def test_any_valid_request_makes_a_body_of_the_platforms_shape(request: Request) -> None:
    call = create_task_to_platform(request)
    BODY_SCHEMA.validate(call.body)
    json.dumps(call.body, allow_nan=False)
    expected_headers = {"x-agent-version": request.agent_version} if request.agent_version else {}
    assert call.headers == expected_headers

    # A platform echoing the body as the new task (as it does) gives the request back.
    body = call.body
    task = task_from_platform(
        {**body, "id": "t1", "agent_id": "a1", "organization_id": "o1", "created_at": 0}
    )
    assert task.input.text == request.prompt
    assert list(task.input.files) == list(request.file_urls)
    assert task.input.HasField("user") == request.HasField("user_details")
    if request.HasField("user_details"):
        assert task.input.user == request.user_details
    assert len(task.input.attachments) == len(request.attachments)
    for field in OPTIONAL_STRING_FIELDS:
        # A Task has no worker_id; source defaults and permission_mode is normalised on the way out.
        if field not in ("source", "permission_mode", "worker_id"):
            assert task.HasField(field) == request.HasField(field)  # type: ignore[arg-type]
            assert getattr(task, field) == getattr(request, field)
    assert task.output_format == request.output_format
    assert task.think_mode == (request.think_mode or task_pb2.THINK_MODE_DEFAULT)
    assert task.llm_reasoning_effort == request.llm_reasoning_effort
    assert task.tool_call_limit == request.tool_call_limit
    assert not task.unrecognized_enum_values
    assert [server.url for server in task.mcp_servers] == [server.url for server in request.mcp_servers]


@SETTINGS
@given(valid_requests(), INVALID_IDS, st.sampled_from(["agent_id", "existing_task_id"]))
def test_invalid_ids_are_refused_with_the_field_named(request: Request, bad: str, field: str) -> None:
    setattr(request, field, bad)
    assert field in violated_fields(request)
    with pytest.raises(InvalidArgument) as caught:
        validate_resource_id("task_id", bad)
    assert [violation.field for violation in caught.value.field_violations] == ["task_id"]


@SETTINGS
@given(INVALID_IDS, st.sampled_from(["agent_id", "user_id"]))
def test_invalid_ids_are_refused_when_listing(bad: str, field: str) -> None:
    request = task_service_pb2.ListTasksRequest(agent_id="a1", user_id="u1")
    setattr(request, field, bad)
    if bad == "":  # an empty id means "not given" here; the other id is still there
        list_tasks_to_platform(request)
        return
    with pytest.raises(InvalidArgument) as caught:
        list_tasks_to_platform(request)
    assert field in {violation.field for violation in caught.value.field_violations}


@SETTINGS
@given(SAFE_IDS)
def test_valid_ids_pass_unchanged(value: str) -> None:
    assert validate_resource_id("task_id", value) == value


@SETTINGS
@given(
    valid_requests(), INVALID_URLS, st.sampled_from(["file_urls", "attachments", "mcp_servers"]), st.data()
)
def test_invalid_urls_are_refused_with_the_field_named(
    request: Request, bad: str, where: str, data: st.DataObject
) -> None:
    container = getattr(request, where)
    index = data.draw(st.integers(0, len(container)))
    if where == "file_urls":
        container.insert(index, bad)
        field = f"file_urls[{index}]"
    elif where == "attachments":
        items = list(container)
        items.insert(index, task_pb2.Attachment(url=bad))
        del container[:]
        container.extend(items)
        field = f"attachments[{index}].url"
    else:
        items = list(container)
        items.insert(index, task_pb2.MCPServerDetails(type=task_pb2.MCP_SERVER_TYPE_REMOTE, url=bad))
        del container[:]
        container.extend(items)
        field = f"mcp_servers[{index}].url"
    assert field in violated_fields(request)


@SETTINGS
@given(valid_requests(), INVALID_EMAILS)
def test_invalid_emails_are_refused_with_the_field_named(request: Request, bad: str) -> None:
    request.user_details.email = bad
    assert "user_details.email" in violated_fields(request)


@SETTINGS
@given(valid_requests(), INVALID_SCHEMAS)
def test_invalid_schemas_are_refused_with_the_field_named(request: Request, bad: dict[str, Any]) -> None:
    request.output_format = task_pb2.OUTPUT_FORMAT_JSON
    request.output_schema.CopyFrom(struct(bad))
    assert "output_schema" in violated_fields(request)


@SETTINGS
@given(st.sampled_from(sorted(FULL_TASK)), JSON_VALUES)
def test_any_value_under_any_task_key_converts_or_is_a_payload_error(key: str, value: Any) -> None:
    try:
        task_from_platform({**FULL_TASK, key: value})
    except PayloadError as error:
        failed_key = error.key
    else:
        return
    assert failed_key.split(".")[0].split("[")[0] == key


@SETTINGS
@given(
    st.sampled_from([*TASK_EVENT_TYPE.by_wire, "brand_new_type"]),
    JSON_VALUES | JSON_OBJECTS | st.just(FULL_TASK),
    st.integers(1, 2**64 - 1),
)
def test_any_event_data_converts_and_nothing_is_lost(type_name: str, data: Any, sequence: int) -> None:
    event = event_from_platform(
        sequence, {"type": type_name, "task_id": "t", "organization_id": "o", "time": 0, "data": data}
    )
    assert (event.sequence, event.type_name) == (sequence, type_name)
    if event.WhichOneof("payload") is None:
        expected = struct_pb2.Struct()
        expected.update({"v": data})
        assert event.data == expected.fields["v"]
    else:
        assert not event.HasField("data")
