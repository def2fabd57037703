"""Reused single-thread executors for asgiref's thread-sensitive contexts.

Django's ASGIHandler opens a ThreadSensitiveContext per request, and asgiref gives each its own
single-thread executor: a thread started for every request and joined (by one more thread)
after it. asgiref 3.13 lets the caller own the executor (`ThreadSensitiveContext(executor=)`),
and the outermost context wins, so a request entered here runs its sync parts on a thread
borrowed for it alone and given back when it ends: still one thread per request at a time, as
Django requires, without the thread's start and join.
"""

from __future__ import annotations

import inspect
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import ThreadSensitiveContext

# Idle executors kept for the next requests; more in flight are made, and shut down after.
KEEP = 64


def supported() -> bool:
    """asgiref 3.13 or newer: a context can be given its executor."""
    return "executor" in inspect.signature(ThreadSensitiveContext).parameters


class ExecutorPool:
    """Single-thread executors, each lent to one request at a time."""

    def __init__(self, keep: int = KEEP) -> None:
        self.keep = keep
        self.idle: list[ThreadPoolExecutor] = []

    def borrow(self) -> ThreadPoolExecutor:
        if self.idle:
            return self.idle.pop()
        return ThreadPoolExecutor(max_workers=1, thread_name_prefix="django-request")

    def give_back(self, executor: ThreadPoolExecutor) -> None:
        if len(self.idle) < self.keep:
            self.idle.append(executor)
        else:
            executor.shutdown(wait=False)

    async def run(self, app: Any, scope: dict[str, Any], receive: Any, send: Any) -> None:
        """`app` with this request's sync parts on a borrowed thread."""
        executor = self.borrow()
        try:
            async with ThreadSensitiveContext(executor=executor):
                await app(scope, receive, send)
        finally:
            self.give_back(executor)
