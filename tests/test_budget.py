"""benchmarks/budget.py: the per-thread CPU split that keeps the replay's decoding apart."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from appliance.camera import name_os_thread
from benchmarks.budget import pi_capture_cpu, thread_cpu

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc")


def test_thread_cpu_books_the_capture_thread_apart() -> None:
    def burn() -> None:
        name_os_thread("capture")
        end = time.process_time() + 0.3  # process CPU: at least 0.3 s of it passes
        x = 0
        while time.process_time() < end:
            x += 1

    before = thread_cpu(os.getpid())
    worker = threading.Thread(target=burn)
    worker.start()
    # Read while the thread still exists: an ended thread leaves /proc/PID/task.
    while worker.is_alive() and thread_cpu(os.getpid()).get("capture", 0.0) < 0.05:
        time.sleep(0.01)
    during = thread_cpu(os.getpid())
    worker.join()
    assert during.get("capture", 0.0) >= 0.05
    assert before.get("capture", 0.0) == 0.0  # nothing here was named capture before
    assert during["appliance"] >= before["appliance"]  # the rest, this test's own thread


def test_the_pi_capture_copy_is_timed() -> None:
    assert pi_capture_cpu(repeats=20) > 0.0
