"""Prompt directives are parsed, bounded and stripped without touching look-alike text."""

from __future__ import annotations

import pytest

from bridge.localplatform.directives import (
    MAX_CHUNKS,
    MAX_DELAY,
    Directives,
    parse_directives,
    strip_directives,
)


def test_a_plain_prompt_has_no_directive() -> None:
    assert parse_directives("count these words") == Directives()


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("go #delay=0.5", Directives(delay=0.5)),
        ("go #delay=2", Directives(delay=2.0)),
        ("go #delay=.25", Directives(delay=0.25)),
        ("go #chunks=7", Directives(chunks=7)),
        ("#fail now", Directives(fail=True)),
        ("#pause", Directives(pause=True)),
        ("wait #never", Directives(never=True)),
        (
            "#never #pause #fail #delay=0 #chunks=1",
            Directives(delay=0.0, chunks=1, fail=True, pause=True, never=True),
        ),
    ],
)
def test_directives_are_read(prompt: str, expected: Directives) -> None:
    assert parse_directives(prompt) == expected


def test_out_of_range_values_are_bounded() -> None:
    assert parse_directives("#delay=99999").delay == MAX_DELAY
    assert parse_directives("#chunks=0").chunks == 1
    assert parse_directives("#chunks=1000000").chunks == MAX_CHUNKS


@pytest.mark.parametrize(
    "prompt", ["#delay=abc", "#chunks=-2", "#failure", "#paused", "#neverland", "# fail"]
)
def test_look_alikes_are_not_directives(prompt: str) -> None:
    assert parse_directives(prompt) == Directives()


def test_strip_removes_only_directives() -> None:
    assert strip_directives("count #delay=0.1 these #chunks=2 words #fail") == "count these words"
    assert strip_directives("#never") == ""
    assert strip_directives("issue #42 and #failure stay") == "issue #42 and #failure stay"
