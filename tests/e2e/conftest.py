"""Fixtures of the end-to-end tests: `stack` is a local platform + bridge + client, each on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest

from tests.e2e.harness import PlatformControl, Stack, bridge_stack
from xpander.bridge.v1 import task_service_pb2_grpc


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    """A running local platform, a bridge pointed at it and a grpc.aio channel to the bridge."""
    async with bridge_stack() as running:
        yield running


@pytest.fixture
def channel(stack: Stack) -> grpc.aio.Channel:
    """The grpc.aio channel to the stack's bridge."""
    return stack.channel


@pytest.fixture
def stub(stack: Stack) -> task_service_pb2_grpc.TaskServiceAsyncStub:
    """The TaskService stub on the stack's channel."""
    return stack.stub


@pytest.fixture
def control(stack: Stack) -> PlatformControl:
    """The stack's local platform test controls."""
    return stack.control
