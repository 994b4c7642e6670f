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
    burned, read = threading.Event(), threading.Event()

    def burn() -> None:
        name_os_thread("capture")
        x = 0
        # This thread's own CPU, not the process's: other threads left in the test process
        # must not shorten the burn.
        while time.thread_time() < 0.3:
            x += 1
        burned.set()
        read.wait(60)  # stay alive until read: an ended thread leaves /proc/PID/task

    before = thread_cpu(os.getpid())
    worker = threading.Thread(target=burn)
    worker.start()
    try:
        assert burned.wait(120)
        during = thread_cpu(os.getpid())
    finally:
        read.set()
        worker.join()
    assert during.get("capture", 0.0) >= 0.2  # 0.3 s burned, read in clock ticks
    assert before.get("capture", 0.0) == 0.0  # nothing here was named capture before
    assert during["appliance"] >= before["appliance"]  # the rest, this test's own thread


def test_the_pi_capture_copy_is_timed() -> None:
    assert pi_capture_cpu(repeats=20) > 0.0
