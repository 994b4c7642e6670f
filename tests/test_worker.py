"""The loop's worker: jobs in order, results as values, a hung job never holds the caller."""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import threading
from pathlib import Path

from appliance.worker import Worker, in_background


def test_jobs_run_in_order_and_come_back_as_values_or_errors():
    worker = Worker("test-worker")
    gate = threading.Event()
    worker.submit("first", lambda: gate.wait(60) and "first done")
    worker.submit("second", lambda: 1 / 0)
    worker.submit("third", lambda: 3)
    assert worker.busy() and worker.busy("first") and worker.busy("third")
    assert worker.done() == []  # nothing finished while the first one waits
    gate.set()
    assert worker.wait_idle(60)
    done = worker.done()
    assert [d.key for d in done] == ["first", "second", "third"]
    assert done[0].value == "first done" and done[0].error is None
    assert isinstance(done[1].error, ZeroDivisionError) and done[1].value is None
    assert done[2].value == 3 and done[2].seconds >= 0.0
    assert worker.done() == [] and not worker.busy()
    assert worker.close()


def test_a_newer_job_replaces_one_still_waiting_under_its_key():
    worker = Worker("test-worker")
    started, gate = threading.Event(), threading.Event()
    ran: list[int] = []

    def hung() -> None:
        started.set()
        gate.wait(60)
        ran.append(0)

    def write(n: int) -> None:
        ran.append(n)

    worker.submit("status", hung)
    assert started.wait(60) and worker.busy("status")
    for n in range(1, 100):  # a hung write: newer statuses wait, and only the newest runs
        worker.submit("status", functools.partial(write, n))
    gate.set()
    assert worker.wait_idle(60)
    assert ran == [0, 99]
    assert [d.key for d in worker.done()] == ["status", "status"]


def test_a_job_blocked_in_a_system_call_never_holds_the_caller(tmp_path: Path):
    fifo = tmp_path / "nobody-writes"
    os.mkfifo(fifo)
    worker = Worker("test-worker")
    worker.submit("read", lambda: fifo.read_text())  # open(2) blocks: no writer
    assert worker.busy("read")
    assert not worker.wait_idle(0.2)  # still blocked; the caller goes on
    assert worker.close(timeout_s=0.0) is False  # left to end by itself
    worker.submit("after", lambda: None)  # nothing runs after close
    fifo.write_text("hello")  # the reader gets it and the thread ends
    assert worker.wait_idle(60)
    assert [(d.key, d.value) for d in worker.done()] == [("read", "hello")]


def test_in_background_hands_back_the_result_or_the_error_of_a_blocked_job():
    read_end, write_end = os.pipe()
    try:
        future = in_background("test-background", lambda: os.read(read_end, 16))
        thread = next(t for t in threading.enumerate() if t.name == "test-background")
        assert thread.daemon
        assert not future.done()  # read(2) blocks until the write below
        os.write(write_end, b"hi")
        assert future.result(timeout=60) == b"hi"
    finally:
        os.close(read_end)
        os.close(write_end)
    failed = in_background("test-background", lambda: 1 / 0)
    assert isinstance(failed.exception(timeout=60), ZeroDivisionError)


def test_in_background_never_keeps_the_process_from_exiting(tmp_path: Path):
    fifo = tmp_path / "nobody-writes"
    os.mkfifo(fifo)
    code = (
        "import sys; from pathlib import Path; from appliance.worker import in_background\n"
        "f = in_background('blocked', lambda: Path(sys.argv[1]).read_text())\n"
        "print('started', f.done(), flush=True)\n"
    )
    # open(2) of the FIFO blocks for good (nobody writes); the interpreter exits all the same.
    done = subprocess.run(
        [sys.executable, "-c", code, str(fifo)], capture_output=True, text=True, timeout=120
    )
    assert (done.returncode, done.stdout) == (0, "started False\n")
