"""The Node and Go examples against a real bridge: what each received, as it printed it."""

from __future__ import annotations

import json

from tests.clients.facts import ExampleRun

ERROR_DOMAIN = "bridge.xpander.ai"


def test_created_task_carries_user_schema_and_mcp_server(example_run: ExampleRun) -> None:
    created = example_run.one("created")
    assert created["status"] == "TASK_STATUS_PENDING"
    assert created["output_format"] == "OUTPUT_FORMAT_JSON"
    assert created["user_email"] == "ada@example.com"
    assert created["mcp_servers"] == ["docs"]


def test_events_run_from_task_created_to_task_finished(example_run: ExampleRun) -> None:
    types = [event["type"] for event in example_run.events()]
    assert types[0] == "TASK_EVENT_TYPE_TASK_CREATED"
    assert types[-1] == "TASK_EVENT_TYPE_TASK_FINISHED"
    assert types.count("TASK_EVENT_TYPE_TASK_FINISHED") == 1
    assert types.count("TASK_EVENT_TYPE_CHUNK") == 4  # the prompt asks for #chunks=4
    assert example_run.events()[-1]["status"] == "TASK_STATUS_COMPLETED"
    assert example_run.one("stream_end")["code"] == "OK"


def test_resumed_stream_continues_without_gap_or_duplicate(example_run: ExampleRun) -> None:
    first = [event["sequence"] for event in example_run.events("first")]
    resumed = [event["sequence"] for event in example_run.events("resumed")]
    cancelled = example_run.one("cancelled")
    assert first == [1, 2, 3]
    assert cancelled["code"] == "CANCELLED"
    assert cancelled["after_sequence"] == first[-1]
    assert resumed[0] == cancelled["after_sequence"] + 1
    assert first + resumed == list(range(1, len(first) + len(resumed) + 1))


def test_chunks_concatenate_to_the_result(example_run: ExampleRun) -> None:
    chunks = "".join(event["chunk"] for event in example_run.events() if "chunk" in event)
    finished = example_run.events()[-1]
    got = example_run.one("get")
    assert chunks == finished["result"] == got["result"]
    answer = json.loads(got["result"])  # output_format JSON with the example's schema
    assert isinstance(answer["summary"], str)
    assert isinstance(answer["words"], int)


def test_get_and_list_find_the_task(example_run: ExampleRun) -> None:
    created = example_run.one("created")
    got = example_run.one("get")
    assert got["task_id"] == created["task_id"]
    assert got["status"] == "TASK_STATUS_COMPLETED"
    listed = example_run.one("list")
    assert listed["found"] is True
    assert listed["total_size"] >= listed["count"] >= 1


def test_long_running_task_is_stopped(example_run: ExampleRun) -> None:
    stopped = example_run.one("stopped")
    assert stopped["status"] == "TASK_STATUS_STOPPED"
    assert stopped["task_id"] != example_run.one("created")["task_id"]


def test_unknown_task_is_not_found_with_error_info(example_run: ExampleRun) -> None:
    error = example_run.one("error", case="unknown_task")
    assert error["code"] == "NOT_FOUND"
    assert error["error_info"]["domain"] == ERROR_DOMAIN
    assert error["error_info"]["ours"] is True
    assert error["error_info"]["reason"]
    assert error["message"]


def test_bad_file_url_is_invalid_argument_naming_the_field(example_run: ExampleRun) -> None:
    error = example_run.one("error", case="bad_file_url")
    assert error["code"] == "INVALID_ARGUMENT"
    assert error["error_info"]["domain"] == ERROR_DOMAIN
    assert [violation["field"] for violation in error["field_violations"]] == ["file_urls[0]"]
    assert error["field_violations"][0]["description"]


def test_unavailable_carries_retry_info_and_the_retry_succeeds(example_run: ExampleRun) -> None:
    error = example_run.one("error", case="user_tasks_retry")
    assert error["code"] == "UNAVAILABLE"
    assert error["retry_delay_seconds"] == 1.0  # the platform's Retry-After
    assert error["error_info"]["domain"] == ERROR_DOMAIN
    listed = example_run.one("user_tasks")
    assert listed["attempts"] == 2
    assert listed["found"] is True
