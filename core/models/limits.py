"""Concurrent-call limits per model endpoint (``ModelConfig.max_concurrent_calls``).

Rate limiters (langchain_core's ``InMemoryRateLimiter``) pace how often requests start;
they cannot bound how many are in flight, which is what protects a small local server or
an endpoint with a concurrency quota. ``LimitedChatOpenAI`` holds a slot for each call.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from pydantic import Field, PrivateAttr


class CallLimiter:
    """At most ``limit`` calls at once, from threads and from the event loop alike."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._threads = threading.BoundedSemaphore(limit)
        # asyncio semaphores belong to one loop; tests and servers may run several.
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @contextmanager
    def hold(self) -> Iterator[None]:
        with self._threads:
            yield

    @asynccontextmanager
    async def ahold(self) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        semaphore = self._loops.setdefault(loop, asyncio.Semaphore(self.limit))
        async with semaphore:
            yield


class LimitedChatOpenAI(ChatOpenAI):
    """ChatOpenAI that keeps at most ``max_concurrent_calls`` requests in flight."""

    max_concurrent_calls: int = Field(default=4, gt=0)
    _limiter: CallLimiter | None = PrivateAttr(default=None)

    @property
    def limiter(self) -> CallLimiter:
        if self._limiter is None:
            self._limiter = CallLimiter(self.max_concurrent_calls)
        return self._limiter

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        with self.limiter.hold():
            return super()._generate(*args, **kwargs)

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        async with self.limiter.ahold():
            return await super()._agenerate(*args, **kwargs)

    def _stream(self, *args: Any, **kwargs: Any) -> Iterator[ChatGenerationChunk]:
        with self.limiter.hold():
            yield from super()._stream(*args, **kwargs)

    async def _astream(self, *args: Any, **kwargs: Any) -> AsyncIterator[ChatGenerationChunk]:
        async with self.limiter.ahold():
            async for chunk in super()._astream(*args, **kwargs):
                yield chunk
