"""One way to log a repeating problem: at once the first time, then at most once per interval.

A camera that fails every frame, a status file on a full disk or a lost systemd socket would
otherwise write a line per frame to the journal. :class:`LogLimiter` is used for all of them
(the loop's errors, the capture thread, the systemd link).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Repeat:
    first: float
    last_logged: float
    suppressed: int = 0


class LogLimiter:
    """Logs a repeating problem once, then a summary at most once per interval.

    Keyed by a short name (``"camera"``, ``"status_write"``): the first occurrence is logged at
    once; further occurrences within ``interval_s`` are counted, and the next one after the
    interval is logged with ``(N more in the last X s)``. :meth:`resolved` logs a recovery line
    (at INFO) once, if the key was active, and forgets it.

    Args:
        logger: Where to log.
        interval_s: Least time between two lines for one key, seconds.
        clock: Monotonic clock in seconds, replaceable for tests.
        repeats_at: The level the repeats within the interval are still logged at (e.g.
            ``logging.DEBUG``, for a journal read at debug level); None drops them.
    """

    def __init__(
        self,
        logger: logging.Logger,
        interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        repeats_at: int | None = None,
    ) -> None:
        self.logger = logger
        self.interval_s = interval_s
        self.repeats_at = repeats_at
        self._clock = clock
        self._active: dict[str, _Repeat] = {}
        self._lock = threading.Lock()

    def log(self, key: str, level: int, msg: str, *args: object) -> bool:
        """Log ``msg % args`` at ``level`` unless ``key`` was logged less than the interval ago.

        Returns:
            True if a line was written.
        """
        now = self._clock()
        with self._lock:
            rep = self._active.get(key)
            if rep is None:
                self._active[key] = _Repeat(first=now, last_logged=now)
                suffix = ""
            elif now - rep.last_logged < self.interval_s:
                rep.suppressed += 1
                if self.repeats_at is not None:
                    self.logger.log(self.repeats_at, msg, *args)
                return False
            else:
                suffix = (
                    f" ({rep.suppressed} more in the last {now - rep.last_logged:.0f} s)"
                    if rep.suppressed
                    else ""
                )
                rep.suppressed = 0
                rep.last_logged = now
        self.logger.log(level, msg + suffix, *args)
        return True

    def warning(self, key: str, msg: str, *args: object) -> bool:
        """:meth:`log` at WARNING."""
        return self.log(key, logging.WARNING, msg, *args)

    def resolved(self, key: str, msg: str, *args: object) -> bool:
        """Log ``msg`` at INFO if ``key`` was active (with how long it lasted); forget the key.

        Returns:
            True if a line was written.
        """
        now = self._clock()
        with self._lock:
            rep = self._active.pop(key, None)
        if rep is None:
            return False
        self.logger.info(msg + f" (after {now - rep.first:.0f} s)", *args)
        return True

    def active(self, key: str) -> bool:
        """True if ``key`` has been logged and not resolved."""
        with self._lock:
            return key in self._active

    def forget(self, key: str) -> None:
        """Forget ``key`` without a line: its next occurrence is logged at once."""
        with self._lock:
            self._active.pop(key, None)
