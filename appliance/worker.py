"""A background lane for the main loop's slow chores: jobs go in, results come back as values.

Whatever can wait on something outside the process — a ``cec-ctl`` command to the monitor
(up to 5 s), a ``vcgencmd`` probe (1 s), the status file's write on a slow SD card — must
not run on the render loop, or the portrait freezes while it waits. The loop hands such a job
to a :class:`Worker` (:meth:`Worker.submit`) and carries on; on a later iteration it picks up
what finished (:meth:`Worker.done`), each result a :class:`Done` value (or the exception the
job raised, never raised in the loop). Neither call blocks.

A worker runs its jobs one after the other, in order, on one daemon thread, so jobs that must
not overlap (standby, then wake) share a worker. A job submitted under a key that is still
waiting replaces the waiting one (the newest status file wins; the queue never grows while a
job hangs); a key whose job is running gets the new one queued behind it.

A one-off job whose result a caller waits for later (the base image decoded while the rest of
start-up goes on, the patches rendered after READY) runs on a thread of its own:
:func:`in_background` hands back a :class:`~concurrent.futures.Future`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

_R = TypeVar("_R")


def in_background(name: str, fn: Callable[[], _R]) -> Future[_R]:
    """Run ``fn()`` on a new daemon thread; its result (or exception) as a Future.

    The thread is a daemon: a stop (during start-up, say) never waits for it, and a job that
    hangs cannot keep the process from exiting. A Future cancelled before the thread starts
    the job skips it.

    Args:
        name: The thread's name (shown by ``py-spy`` and in thread dumps).
        fn: The job.
    """
    future: Future[_R] = Future()

    def work() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as err:
            future.set_exception(err)

    threading.Thread(target=work, name=name, daemon=True).start()
    return future


@dataclass(frozen=True)
class Done:
    """A finished job.

    Attributes:
        key: The key it was submitted under.
        value: What the job returned (None if it raised).
        error: The exception it raised, or None.
        seconds: How long it ran, seconds (queueing not counted).
    """

    key: str
    value: Any
    error: BaseException | None
    seconds: float


class Worker:
    """One thread that runs the loop's slow jobs in order and hands back their results.

    The thread starts with the first job and is a daemon: a job that hangs for good cannot
    keep the process from exiting.

    Args:
        name: The thread's name (shown by ``py-spy`` and in thread dumps).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._cond = threading.Condition()
        self._waiting: dict[str, Callable[[], Any]] = {}
        self._running: str | None = None
        self._done: deque[Done] = deque(maxlen=256)  # the loop collects them each second
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, key: str, job: Callable[[], Any]) -> None:
        """Run ``job`` on the worker's thread; a job still waiting under ``key`` is dropped.

        Does not block. After :meth:`close` nothing is run.
        """
        with self._cond:
            if self._closed:
                return
            self._waiting.pop(key, None)  # the newer job goes to the back of the line
            self._waiting[key] = job
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def busy(self, key: str | None = None) -> bool:
        """True while a job (under ``key``, if given) is waiting or running."""
        with self._cond:
            if key is None:
                return bool(self._waiting) or self._running is not None
            return key in self._waiting or self._running == key

    def done(self) -> list[Done]:
        """The jobs finished since the last call, oldest first; never blocks."""
        with self._cond:
            out = list(self._done)
            self._done.clear()
            return out

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no job is waiting or running, at most ``timeout_s`` seconds.

        Returns:
            True if the worker is idle, False if a job is still waiting or running.
        """
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while self._waiting or self._running is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self, timeout_s: float = 0.0) -> bool:
        """Let the jobs already submitted finish (waiting at most ``timeout_s``), then stop.

        Returns:
            True if every job finished; False if one still runs (its thread is a daemon and
            is left to end by itself, or with the process).
        """
        idle = self.wait_idle(timeout_s)
        with self._cond:
            self._closed = True
            self._waiting.clear()
            self._cond.notify_all()
        return idle

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._waiting and not self._closed:
                    self._cond.wait()
                if not self._waiting:  # closed and nothing left
                    return
                key = next(iter(self._waiting))
                job = self._waiting.pop(key)
                self._running = key
            start = time.monotonic()
            value: Any = None
            error: BaseException | None = None
            try:
                value = job()
            except Exception as err:
                error = err
            finished = Done(key, value, error, time.monotonic() - start)
            with self._cond:
                self._running = None
                self._done.append(finished)
                self._cond.notify_all()
