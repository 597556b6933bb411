"""Paging a whole array with opaque tokens bound to the request's filters."""

from __future__ import annotations

import pytest

from bridge.errors import InvalidArgument
from bridge.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, PageRequest, filters_fingerprint

ITEMS = list(range(7))
FINGERPRINT = filters_fingerprint({"path": "agent-execution/executions/history/a", "status": "completed"})


def walk(page_size: int) -> list[list[int]]:
    pages, token = [], ""
    while True:
        page = PageRequest.parse(page_size=page_size, page_token=token, fingerprint=FINGERPRINT).page(ITEMS)
        assert page.total_size == len(ITEMS)
        pages.append(list(page.items))
        token = page.next_page_token
        if not token:
            return pages


def test_pages_cover_the_list_once_in_order() -> None:
    assert walk(3) == [[0, 1, 2], [3, 4, 5], [6]]
    assert walk(7) == [ITEMS]


def test_default_and_maximum_page_sizes() -> None:
    assert PageRequest.parse(page_size=0, page_token="", fingerprint=FINGERPRINT).size == DEFAULT_PAGE_SIZE
    assert PageRequest.parse(page_size=10**6, page_token="", fingerprint=FINGERPRINT).size == MAX_PAGE_SIZE


def test_empty_list_is_one_empty_page() -> None:
    page = PageRequest.parse(page_size=5, page_token="", fingerprint=FINGERPRINT).page(list[int]())
    assert (list(page.items), page.next_page_token, page.total_size) == ([], "", 0)


def test_fingerprint_ignores_key_order() -> None:
    assert filters_fingerprint({"a": "1", "b": "2"}) == filters_fingerprint({"b": "2", "a": "1"})


def field_of(error: pytest.ExceptionInfo[InvalidArgument]) -> str:
    return error.value.field_violations[0].field


def test_negative_page_size_names_page_size() -> None:
    with pytest.raises(InvalidArgument) as error:
        PageRequest.parse(page_size=-1, page_token="", fingerprint=FINGERPRINT)
    assert field_of(error) == "page_size"


@pytest.mark.parametrize(
    "token", ["garbage!", "bm90IGpzb24", "WzEsMl0", "eyJvIjotMSwiZiI6IngifQ", "eyJvIjp0cnVlfQ"]
)
def test_tokens_not_issued_here_name_page_token(token: str) -> None:
    with pytest.raises(InvalidArgument) as error:
        PageRequest.parse(page_size=2, page_token=token, fingerprint=FINGERPRINT)
    assert field_of(error) == "page_token"


def test_token_replayed_with_other_filters_is_rejected() -> None:
    token = PageRequest.parse(page_size=2, page_token="", fingerprint=FINGERPRINT).page(ITEMS).next_page_token
    with pytest.raises(InvalidArgument, match="other filters") as error:
        PageRequest.parse(
            page_size=2, page_token=token, fingerprint=filters_fingerprint({"status": "failed"})
        )
    assert field_of(error) == "page_token"


def test_token_past_a_shrunk_list_is_rejected() -> None:
    token = PageRequest.parse(page_size=6, page_token="", fingerprint=FINGERPRINT).page(ITEMS).next_page_token
    with pytest.raises(InvalidArgument) as error:
        PageRequest.parse(page_size=6, page_token=token, fingerprint=FINGERPRINT).page(ITEMS[:3])
    assert field_of(error) == "page_token"
