"""Running under systemd: the sd_notify protocol, journal-friendly logging and log rate limits.

:class:`Notifier` speaks the sd_notify protocol itself, as sd_notify(3) describes it: one
datagram per message on the ``AF_UNIX``/``SOCK_DGRAM`` socket named by ``$NOTIFY_SOCKET`` (a
path, or an abstract address starting with ``@``), sent without blocking. No systemd library is
needed (nor ``libsystemd-dev`` to build one). Outside systemd (``$NOTIFY_SOCKET`` unset) every
call is a no-op, so the appliance runs the same on a laptop. Every rate limit on notifications
(``WATCHDOG=1``, ``STATUS=``, the warning for a lost one) is here: callers call as often as
they like.

The protocol as the appliance uses it:

* ``READY=1`` once the first portrait frame is on screen, or once the appliance starts waiting
  for a screen that is not there yet (:meth:`Notifier.ready`), and ``EXTEND_TIMEOUT_USEC``
  before a long start-up step (:meth:`Notifier.extend_timeout`).
* ``WATCHDOG=1`` from the main loop only, while it makes progress (:meth:`Notifier.watchdog`);
  a hung loop stops pinging and systemd kills and restarts the service.
* ``STATUS=...`` a one-line summary for ``systemctl status``, at most once a second.
* ``STOPPING=1`` when shutting down.

Logging (:func:`setup_logging`): when stderr is connected to the journal (``$JOURNAL_STREAM``
names stderr's device and inode), each line is written as ``<N>logger: message`` where ``N`` is
the syslog priority, without a timestamp (the journal adds its own); otherwise lines carry a
timestamp. :class:`~appliance.loglimit.LogLimiter` keeps a repeating error from being
logged once per frame.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TextIO

from appliance.loglimit import LogLimiter

log = logging.getLogger(__name__)


def socket_address(value: str) -> str | bytes:
    """Turn a ``$NOTIFY_SOCKET`` value into an address for :meth:`socket.socket.sendto`.

    Args:
        value: A filesystem path (``/run/systemd/notify``) or an abstract socket name written
            with a leading ``@`` (``@/org/freedesktop/systemd1/notify/123``).

    Returns:
        The path unchanged, or the abstract name as bytes with a leading NUL.

    Raises:
        ValueError: The value is empty or neither a path nor an abstract name.
    """
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode()
    if value.startswith("/"):
        return value
    raise ValueError(f"NOTIFY_SOCKET={value!r}: not an absolute path or @abstract name")


class Notifier:
    """Tells systemd about the service's life: ready, alive, what it is doing, stopping.

    Every method is safe to call outside systemd (it does nothing) and never raises: a lost
    notification is logged (rate limited), the appliance goes on.

    Args:
        environ: Where to read ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``;
            default ``os.environ``.
        status_interval_s: Least time between two ``STATUS=`` messages, seconds (> 0).
        clock: Monotonic clock in seconds, replaceable for tests.

    Attributes:
        enabled: True when ``$NOTIFY_SOCKET`` is set to a usable address (running under
            ``Type=notify``).
        sent: Messages delivered so far (for tests and the debug log).
        watchdog_timeout_s: ``WatchdogSec=`` in seconds, or None when no watchdog is asked for
            (or it is meant for another process, per ``$WATCHDOG_PID``).
    """

    def __init__(
        self,
        *,
        environ: Mapping[str, str] | None = None,
        status_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if environ is None else environ
        self._clock = clock
        self._status_interval_s = status_interval_s
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._address: str | bytes | None = None
        self._limiter = LogLimiter(log, interval_s=60.0)
        self._ready_sent = False
        self._last_status: float | None = None
        self._last_watchdog: float | None = None
        self.watchdog_timeout_s = _watchdog_timeout(env)
        self.sent = 0

        notify_socket = env.get("NOTIFY_SOCKET", "")
        self.enabled = bool(notify_socket)
        if not self.enabled:
            return
        try:
            self._address = socket_address(notify_socket)
        except ValueError as err:
            log.warning("%s; not notifying systemd", err)
            self.enabled = False

    @property
    def watchdog_interval_s(self) -> float | None:
        """Seconds between watchdog pings the loop should keep to: half of ``WatchdogSec=``.

        None when systemd asked for no watchdog. :meth:`watchdog` rate limits itself to this,
        so the loop may simply call it once per iteration.
        """
        if self.watchdog_timeout_s is None:
            return None
        return self.watchdog_timeout_s / 2.0

    def ready(self, status: str | None = None) -> None:
        """Send ``READY=1`` (once; later calls do nothing), optionally with a ``STATUS=``.

        Call it when the first portrait frame is on screen, or the wait for a late screen begins.
        """
        if self._ready_sent:
            return
        self._ready_sent = True
        lines = ["READY=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
            self._last_status = self._clock()
        self._send("\n".join(lines))

    def extend_timeout(self, seconds: float, reason: str) -> None:
        """Ask systemd to wait ``seconds`` more for ``READY=1``, saying why in ``STATUS=``.

        Sends ``EXTEND_TIMEOUT_USEC`` (the start timeout then ends ``seconds`` from now, if
        that is later than ``TimeoutStartSec=``) before a long step of start-up. Does nothing
        once ready or outside systemd.

        Args:
            seconds: How long the step may take, seconds (> 0).
            reason: What is being waited for, e.g. "decoding the 100 Mpx base image".
        """
        if self._ready_sent or not self.enabled:
            return
        # Not counted against STATUS='s once-a-second limit: the loop's first status after
        # READY must not be dropped because of it.
        usec = max(1, round(seconds * 1e6))
        self._send(f"EXTEND_TIMEOUT_USEC={usec}\nSTATUS={_one_line(reason)}")

    def watchdog(self) -> None:
        """Send ``WATCHDOG=1`` if a ping is due (at most every :attr:`watchdog_interval_s`).

        Call it from the main loop only, once per iteration that made progress, never from a
        helper thread: the point is that a hung loop stops pinging.
        """
        interval = self.watchdog_interval_s
        if interval is None or not self.enabled:
            return
        now = self._clock()
        # Ping at twice the recommended rate so one late iteration never misses the deadline.
        if self._last_watchdog is not None and now - self._last_watchdog < interval / 2.0:
            return
        self._last_watchdog = now
        self._send("WATCHDOG=1")

    def status(self, text: str, *, force: bool = False) -> None:
        """Send ``STATUS=text`` (shown by ``systemctl status``), at most once per interval.

        Args:
            text: A short summary, e.g. ``"tracking, 29.8 fps, 1 viewer"``; newlines become
                spaces.
            force: Send even if the last status went out less than the interval ago.
        """
        if not self.enabled:
            return
        now = self._clock()
        if (
            not force
            and self._last_status is not None
            and now - self._last_status < self._status_interval_s
        ):
            return
        self._last_status = now
        self._send(f"STATUS={_one_line(text)}")

    def stopping(self, status: str | None = None) -> None:
        """Send ``STOPPING=1`` (and a final ``STATUS=`` if given) when shutting down."""
        lines = ["STOPPING=1"]
        if status is not None:
            lines.append(f"STATUS={_one_line(status)}")
        self._send("\n".join(lines))

    def close(self) -> None:
        """Close the socket, if one was opened."""
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _send(self, message: str) -> bool:
        if not self.enabled:
            return False
        try:
            with self._lock:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.setblocking(False)
                assert self._address is not None
                self._socket.sendto(message.encode(), self._address)
                self.sent += 1
            self._limiter.resolved("notify", "sd_notify delivers again")
            return True
        except OSError as err:
            self._limiter.warning("notify", "sd_notify(%r) failed: %s", message, err)
            return False


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _watchdog_timeout(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    if not usec:
        return None
    pid = env.get("WATCHDOG_PID", "")
    if pid:
        try:
            if int(pid) != os.getpid():
                return None
        except ValueError:
            return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("WATCHDOG_USEC=%r is not a number; watchdog pings disabled", usec)
        return None
    return value / 1e6 if value > 0 else None


# ---------------------------------------------------------------------------------------------
# Logging

LEVELS = ("debug", "info", "warning", "error", "critical")
"""Level names :func:`setup_logging` accepts (any case)."""


def syslog_priority(levelno: int) -> int:
    """The syslog priority (0 emerg … 7 debug) for a :mod:`logging` level number."""
    if levelno >= logging.CRITICAL:
        return 2
    if levelno >= logging.ERROR:
        return 3
    if levelno >= logging.WARNING:
        return 4
    if levelno >= logging.INFO:
        return 6
    return 7


class JournalFormatter(logging.Formatter):
    """``<N>logger: message`` lines for stderr connected to the journal, no timestamp.

    Every line of a multi-line record (a traceback) carries the prefix, because journald
    turns each line of a stream into its own entry.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Format the record with a syslog priority prefix on every line."""
        text = super().format(record)
        prefix = f"<{syslog_priority(record.levelno)}>"
        return "\n".join(prefix + line for line in text.splitlines() or [""])


_PLAIN_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
_JOURNAL_FORMAT = "%(name)s: %(message)s"


def journal_stream_matches(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when ``$JOURNAL_STREAM`` names this stream's device and inode (see systemd.exec(5)).

    Args:
        stream: Usually ``sys.stderr``.
        environ: Where to read ``JOURNAL_STREAM``; default ``os.environ``.
    """
    env = os.environ if environ is None else environ
    value = env.get("JOURNAL_STREAM", "")
    if not value:
        return False
    try:
        dev_text, ino_text = value.split(":", 1)
        st = os.fstat(stream.fileno())
        return st.st_dev == int(dev_text) and st.st_ino == int(ino_text)
    except (ValueError, OSError, AttributeError):
        return False


def parse_level(level: str | int) -> int:
    """A :mod:`logging` level number from a name in :data:`LEVELS` (any case) or a number.

    Raises:
        ValueError: An unknown level name.
    """
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name.lower() not in LEVELS:
        raise ValueError(f"log level {level!r}: expected one of {', '.join(LEVELS)}")
    return int(logging.getLevelName(name))


class _ServiceHandler(logging.StreamHandler[TextIO]):
    """Marks the handler this module installed, so a second setup replaces it."""


def setup_logging(
    level: str | int = "info",
    *,
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> bool:
    """Configure the root logger for the appliance: journal-friendly under systemd.

    Args:
        level: ``"debug"``, ``"info"``, ``"warning"``, ``"error"``, ``"critical"`` or a
            :mod:`logging` level number.
        stream: Where lines go; default ``sys.stderr``.
        environ: Where to read ``JOURNAL_STREAM``; default ``os.environ``.

    Returns:
        True if lines are written for the journal (priority prefix, no timestamp).

    Raises:
        ValueError: An unknown level name.
    """
    levelno = parse_level(level)
    out = sys.stderr if stream is None else stream
    journal = journal_stream_matches(out, environ)
    handler = _ServiceHandler(out)
    if journal:
        handler.setFormatter(JournalFormatter(_JOURNAL_FORMAT))
    else:
        handler.setFormatter(logging.Formatter(_PLAIN_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(levelno)
    return journal
