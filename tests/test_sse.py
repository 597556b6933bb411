"""The text/event-stream decoder, fed text without sockets (WHATWG HTML §9.2.6)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.platform.sse import LineSplitter, ServerSentEvent, SSEDecoder


def decode(*chunks: str) -> list[ServerSentEvent]:
    splitter, decoder = LineSplitter(), SSEDecoder()
    events = []
    for chunk in chunks:
        for line in splitter.feed(chunk):
            event = decoder.decode(line)
            if event is not None:
                events.append(event)
    return events


def test_data_and_id_fields() -> None:
    assert decode('id: 1\ndata: {"a": 1}\n\n') == [ServerSentEvent(data='{"a": 1}', id="1", has_id=True)]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert decode("data: one\ndata:two\ndata:  three\n\n")[0].data == "one\ntwo\n three"


def test_event_name_defaults_to_message_and_resets_per_event() -> None:
    events = decode("event: ping\ndata: a\n\ndata: b\n\n")
    assert [(e.event, e.data) for e in events] == [("ping", "a"), ("message", "b")]


def test_comments_and_unknown_fields_are_ignored() -> None:
    assert decode(": keepalive\n\nfoo: bar\ndata: x\n\n") == [ServerSentEvent(data="x")]


def test_a_block_without_data_dispatches_nothing() -> None:
    assert decode("event: ping\n\nid: 7\n\n") == []


def test_last_event_id_persists_but_has_id_is_per_event() -> None:
    events = decode("id: 3\ndata: a\n\ndata: b\n\n")
    assert [(e.id, e.has_id) for e in events] == [("3", True), ("3", False)]


def test_id_with_nul_is_ignored() -> None:
    assert decode("id: 1\ndata: a\n\nid: 2\0\ndata: b\n\n")[1].id == "1"


def test_retry_is_ignored() -> None:
    assert decode("retry: 1\ndata: a\n\n") == [ServerSentEvent(data="a")]


def test_field_without_colon_has_empty_value() -> None:
    assert decode("data\ndata\n\n")[0].data == "\n"


def test_crlf_cr_and_lf_all_end_lines() -> None:
    assert [e.data for e in decode("data: a\r\n\r\ndata: b\r\rdata: c\n\n")] == ["a", "b", "c"]


def test_crlf_split_across_chunks_is_one_terminator() -> None:
    assert [e.data for e in decode("data: a\r", "\n\r", "\ndata: b\n", "\n")] == ["a", "b"]


def test_leading_bom_is_dropped_once() -> None:
    assert [e.data for e in decode("\ufeffdata: a\n\n\ufeffdata: b\n\n")] == ["a"]


def test_unicode_line_separators_stay_in_data() -> None:
    assert decode("data: a\u2028b\x0cc\x85d\n\n")[0].data == "a\u2028b\x0cc\x85d"


def test_unterminated_event_at_end_of_stream_is_not_dispatched() -> None:
    splitter, decoder = LineSplitter(), SSEDecoder()
    lines = splitter.feed("data: complete\n\ndata: partial")
    assert [e for line in lines if (e := decoder.decode(line)) is not None] == [
        ServerSentEvent(data="complete")
    ]


@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="\r\n"), max_size=20), max_size=6), st.data()
)
def test_any_chunking_gives_the_same_events(payloads: list[str], data: st.DataObject) -> None:
    text = "".join(f"id: {i}\r\ndata: {p}\r\n\r\n" for i, p in enumerate(payloads, 1))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=8)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
    # A value's single leading space is part of the field syntax, not of the data.
    assert [(e.id, e.data) for e in decode(*chunks)] == [(str(i), p) for i, p in enumerate(payloads, 1)]
