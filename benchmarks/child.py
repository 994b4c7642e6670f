"""A child process's own cost: wall and CPU seconds and its peak resident set.

``wait4``'s ``ru_maxrss`` is no good for the peak: Linux keeps a forked child's high-water mark
across ``exec``, so a child of a benchmark holding a large painting reports the benchmark's
memory. ``VmHWM`` in ``/proc/PID/status`` is the high-water mark of the program the child
runs; it only grows, so reading it every few milliseconds until the child exits gives its
peak (less whatever it adds in its last milliseconds).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True, slots=True)
class ChildCost:
    """What one child process cost.

    Attributes:
        wall: Seconds from ``t0`` (given to :func:`wait_measured`) to its exit.
        cpu: User + system CPU seconds, all its threads.
        peak_rss: Its peak resident set, bytes (``VmHWM``).
        returncode: Its exit status (negative: the signal that ended it).
    """

    wall: float
    cpu: float
    peak_rss: int
    returncode: int


def wait_measured(proc: subprocess.Popen[Any], t0: float, poll_s: float = 0.005) -> ChildCost:
    """Wait for ``proc`` (spawned at ``time.perf_counter()`` = ``t0``) and return its cost."""
    peak_kib = 0
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        with contextlib.suppress(OSError):  # (no VmHWM line once it has exited)
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak_kib = max(peak_kib, int(line.split()[1]))
        time.sleep(poll_s)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ChildCost(wall, usage.ru_utime + usage.ru_stime, peak_kib * 1024, proc.returncode)
