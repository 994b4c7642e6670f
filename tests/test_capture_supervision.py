"""The camera supervisor (``Capture.supervise``): stalled reads abandoned, fresh sources opened.

The sources here block in a real ``read(2)`` on a pipe (a system call, not a Python sleep or
event) while their "camera" is stalled, and record which thread uses them: two threads must
never use one source object, and an abandoned thread must never close another thread's source.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from appliance.camera import MAX_STUCK_READS, CameraError, CameraSource, Capture

IMAGE = np.zeros((24, 32, 3), np.uint8)


class Device:
    """One camera that all the sources made for it share; it can stall and be released."""

    def __init__(self) -> None:
        self.stalled = False
        self.lock = threading.Lock()
        self.sources: list[PipeSource] = []
        self.violations: list[str] = []
        self.opens = 0

    def stall(self) -> None:
        self.stalled = True

    def release(self) -> None:
        """The camera delivers again: every read blocked on it returns."""
        self.stalled = False
        with self.lock:
            blocked = [s for s in self.sources if s.blocked]
        for s in blocked:
            s.wake()


class PipeSource:
    """A source on ``device`` whose read blocks in ``os.read`` on its own pipe while stalled.

    Its pipe exists from open to close (so a source never closed shows as an fd left open).
    Every call records its thread: a second thread on the same object is a violation.
    """

    lossless = False

    def __init__(self, device: Device, refreshable: bool) -> None:
        self.name = "pipe"
        self.device = device
        self.refreshable = refreshable
        self.owner: threading.Thread | None = None
        self.inside = 0
        self.blocked = False
        self.pipe: tuple[int, int] | None = None
        with device.lock:
            device.sources.append(self)

    def _enter(self, what: str) -> None:
        me = threading.current_thread()
        with self.device.lock:
            if self.owner is not me and self.owner is not None and self.owner.is_alive():
                self.device.violations.append(f"{what} by a second thread")
            self.owner = me  # a source is reopened by a new thread only once the last ended
            self.inside += 1
            if self.inside > 1:
                self.device.violations.append(f"{what} while another call runs")

    def _leave(self) -> None:
        with self.device.lock:
            self.inside -= 1

    def fresh(self) -> CameraSource | None:
        """A fresh source on the device, or None for one that cannot be opened twice."""
        return PipeSource(self.device, True) if self.refreshable else None

    def open(self) -> None:
        self._enter("open")
        try:
            if self.pipe is not None:
                self.device.violations.append("opened twice")
            self.pipe = os.pipe()
            self.device.opens += 1
        finally:
            self._leave()

    def wake(self) -> None:
        pipe = self.pipe
        if pipe is not None:
            with contextlib.suppress(OSError):  # closed meanwhile: nothing to wake
                os.write(pipe[1], b"x")

    def read(self) -> tuple[np.ndarray, float]:
        self._enter("read")
        try:
            if self.pipe is None:
                raise CameraError("pipe: not open")
            if self.device.stalled:
                self.blocked = True
                try:
                    os.read(self.pipe[0], 1)  # a real blocking system call
                finally:
                    self.blocked = False
            else:
                time.sleep(0.001)
            return IMAGE, time.monotonic()
        finally:
            self._leave()

    def close(self) -> None:
        self._enter("close")
        try:
            pipe, self.pipe = self.pipe, None
            if pipe is not None:
                os.close(pipe[0])
                os.close(pipe[1])
        finally:
            self._leave()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def wait_until(what: str, cond: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.002)


def supervised(cap: Capture, cond: Callable[[], object]) -> Callable[[], object]:
    """``cond``, checked after a supervision round (as the main loop does each iteration)."""

    def check() -> object:
        cap.supervise()
        return cond()

    return check


def capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "capture"]


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts fds in /proc")
@pytest.mark.parametrize("refreshable", [True, False], ids=["fresh-source", "same-source"])
def test_1000_random_stall_reopen_stop_start_cycles(refreshable: bool) -> None:
    """Seeded random stalls, releases, supervision (abandoning reads), stops and starts: never
    two threads on one source, nothing closed by another thread, no fd or thread left over."""
    rng = random.Random(22)
    device = Device()
    first = PipeSource(device, refreshable)
    fds, threads = open_fds(), len(threading.enumerate())
    cap = Capture(first, retry_initial_s=0.001, retry_max_s=0.004, stall_after_s=0.05)
    most_threads = 0
    cap.start()
    try:
        for _ in range(1000):
            op = rng.choice(["stall", "release", "abandon", "supervise", "stop", "start", "take"])
            if op == "stall":
                device.stall()
                time.sleep(0.002)  # let a read block
            elif op == "release":
                device.release()
            elif op == "abandon":  # as if the read had taken longer than stall_after_s
                cap.supervise(time.monotonic() + 0.06)
            elif op == "supervise":
                cap.supervise()
            elif op == "stop":
                cap.stop(timeout=0.01)
            elif op == "start":
                cap.start()
            else:
                cap.latest(0.002)
            most_threads = max(most_threads, len(capture_threads()))
            assert not device.violations, device.violations
    finally:
        device.release()
        cap.stop(timeout=5.0)
        device.release()  # a read that blocked while stopping
    wait_until("every capture thread to end", lambda: not capture_threads())
    assert not device.violations, device.violations
    assert open_fds() == fds
    assert len(threading.enumerate()) == threads
    assert device.opens >= 10 and cap.stalls >= 5  # the cycles really reopened the camera
    if not refreshable:
        assert len(device.sources) == 1 and most_threads <= 2
    assert all(s.pipe is None for s in device.sources)  # each closed, by its own thread


def blocked_in_a_read(stall_after_s: float) -> tuple[Device, Capture]:
    """A started capture that delivered frames, whose read now blocks in os.read."""
    device = Device()
    cap = Capture(PipeSource(device, True), retry_initial_s=0.01, stall_after_s=stall_after_s)
    cap.start()
    try:
        wait_until("frames", lambda: cap.state == "running")
        device.stall()
        wait_until("the read to block", lambda: device.sources[0].blocked)
    except BaseException:
        device.release()
        cap.stop()
        raise
    return device, cap


def test_a_read_blocked_for_good_is_abandoned_and_a_fresh_source_delivers() -> None:
    """A real os.read that never returns: the camera runs again on a fresh source, counted."""
    device, cap = blocked_in_a_read(stall_after_s=0.2)
    blocked = device.sources[0]
    try:
        device.stalled = False  # new reads work; the blocked one stays blocked
        wait_until("the stall", supervised(cap, lambda: cap.stalls == 1))
        assert cap.state == "failed" and "no frame for" in (cap.last_error or "")
        wait_until("a fresh source", supervised(cap, lambda: cap.state == "running"))
        assert cap.reopens == 1 and cap.stuck_reads == 1 and cap.hand_over is None
        assert blocked.blocked and blocked.pipe is not None  # still held by its own thread
        assert len(device.sources) == 2 and cap.source is device.sources[1]
        frame = cap.latest(1.0)
        assert frame is not None and frame.opening == 2
    finally:
        device.release()
        cap.stop()
    wait_until("the abandoned thread to end", lambda: not capture_threads())
    assert blocked.pipe is None and not device.violations


@pytest.mark.parametrize("lets_go", [True, False], ids=["lets-go", "holds-it"])
def test_a_device_that_cannot_be_opened_twice_waits_for_its_abandoned_read(lets_go: bool) -> None:
    """As picamera2: no second open while the abandoned read holds the device. If that read
    returns within the backoff, the same source is reopened; if not, hand_over says so."""
    device = Device()
    cap = Capture(PipeSource(device, False), retry_initial_s=0.3, stall_after_s=0.05)
    cap.start()
    try:
        wait_until("frames", lambda: cap.state == "running")
        device.stall()
        wait_until("the stall", supervised(cap, lambda: cap.stalls == 1))
        assert len(cap.threads()) == 1  # the abandoned one: no second thread on the device
        if lets_go:
            device.release()
            wait_until("frames again", supervised(cap, lambda: cap.state == "running"))
            assert cap.hand_over is None and cap.reopens == 1
        else:
            wait_until("the hand-over", supervised(cap, lambda: cap.hand_over))
            assert cap.hand_over == "camera: an abandoned read still holds pipe"
            assert len(cap.threads()) == 1 and cap.reopens == 0
        assert len(device.sources) == 1 and not device.violations
    finally:
        device.release()
        cap.stop()
    wait_until("the threads to end", lambda: not capture_threads())


def test_stuck_reads_hand_over_to_systemd() -> None:
    """Every fresh source hangs too: after MAX_STUCK_READS abandoned reads, hand_over says so."""
    device = Device()
    device.stall()
    cap = Capture(PipeSource(device, True), retry_initial_s=0.01, stall_after_s=0.05)
    cap.start()
    try:
        wait_until("the hand-over", supervised(cap, lambda: cap.hand_over))
        assert cap.stalls == MAX_STUCK_READS and cap.stuck_reads == MAX_STUCK_READS
        assert f"{MAX_STUCK_READS} abandoned reads are still blocked" in (cap.hand_over or "")
    finally:
        device.release()
        cap.stop()
    wait_until("the threads to end", lambda: not capture_threads())


def test_no_frame_for_handover_after_s_despite_reopening_hands_over() -> None:
    class Away(PipeSource):
        def open(self) -> None:
            raise CameraError("pipe: no camera")

    device = Device()
    cap = Capture(Away(device, True), retry_initial_s=0.01, handover_after_s=0.3)
    cap.start()
    try:
        cap.supervise()
        assert cap.hand_over is None
        wait_until("the hand-over", supervised(cap, lambda: cap.hand_over))
        assert "no frame for" in (cap.hand_over or "")
        assert cap.state == "failed"
    finally:
        cap.stop()
    # Stopped (the gallery closed): no hand-over is worked out while stopped.
    later = Capture(Away(device, True), handover_after_s=0.3)
    later.start()
    later.stop()
    later.supervise(time.monotonic() + 10)
    assert later.hand_over is None


def test_start_after_stop_never_waits_for_a_blocked_thread() -> None:
    """The old thread blocked in a read: start() returns at once, a fresh thread reads."""
    device, cap = blocked_in_a_read(stall_after_s=30.0)
    try:
        cap.stop(timeout=0.01)
        device.stalled = False
        cap.start()
        assert device.sources[0].blocked  # start() returned with the old read still blocked
        wait_until("frames again", lambda: cap.latest(0.01) is not None)
        assert len(device.sources) == 2 and device.sources[0].blocked
        assert len(capture_threads()) == 2
    finally:
        device.release()
        cap.stop()
    wait_until("the threads to end", lambda: not capture_threads())
    assert not device.violations
