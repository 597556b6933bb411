"""Fixtures: a real local platform on a free port and an HTTP client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from bridge.localplatform import LocalPlatform


@pytest.fixture
async def platform() -> AsyncIterator[LocalPlatform]:
    """A platform with fast scripted agents and frequent keep-alives, so tests stay quick."""
    async with LocalPlatform(step_delay=0.002, keepalive_interval=0.1) as running:
        yield running


@pytest.fixture
async def client(platform: LocalPlatform) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the platform's base URL (routes without the organization segment)."""
    async with httpx.AsyncClient(base_url=platform.url, timeout=10.0) as http:
        yield http
