"""appliance.service: sd_notify over a real AF_UNIX datagram socket, journal logging, rate limits.

The socket tests bind a real ``SOCK_DGRAM`` socket (a path in a temp dir, or an abstract name)
and point ``NOTIFY_SOCKET`` at it, exactly as systemd does for a ``Type=notify`` service (the
notifier's one path: a datagram per message, no systemd library). The end-to-end tests start the
real ``monalisa run`` on a replay clip.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from appliance import service
from appliance.service import Notifier, setup_logging, socket_address
from tests.support.run import MONALISA, app_env, monalisa_for


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Listener:
    """A bound AF_UNIX datagram socket, as systemd's notify socket."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def recv(self, timeout: float = 2.0) -> str | None:
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(4096).decode()
        except TimeoutError:
            return None

    def drain(self, timeout: float = 0.05) -> list[str]:
        out = []
        while (m := self.recv(timeout)) is not None:
            out.append(m)
        return out


@pytest.fixture
def path_socket() -> Iterator[Listener]:
    d = tempfile.mkdtemp(prefix="ml-", dir="/tmp")  # short: AF_UNIX paths are <= 107 bytes
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    try:
        yield Listener(sock, path)
    finally:
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def abstract_socket() -> Iterator[Listener]:
    name = f"monalisa-test-{os.getpid()}-{time.monotonic_ns()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name.encode())
    try:
        yield Listener(sock, "@" + name)
    finally:
        sock.close()


# -- addresses ------------------------------------------------------------------------------


def test_socket_address_forms():
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("@/org/freedesktop/systemd1/notify/7") == (
        b"\0/org/freedesktop/systemd1/notify/7"
    )
    for bad in ("", "@", "relative/path"):
        with pytest.raises(ValueError, match="NOTIFY_SOCKET"):
            socket_address(bad)


# -- outside systemd ------------------------------------------------------------------------


def test_noop_without_notify_socket(path_socket):
    n = Notifier(environ={"WATCHDOG_USEC": "2000000"})
    assert not n.enabled
    n.ready()
    n.watchdog()
    n.status("tracking")
    n.stopping()
    assert n.sent == 0
    assert path_socket.drain() == []


# -- the protocol -------------------------------------------------------------------------------


def make(listener: Listener, **env: str) -> tuple[Notifier, FakeClock]:
    environ = {"NOTIFY_SOCKET": listener.env_value, **env}
    clock = FakeClock()
    n = Notifier(environ=environ, clock=clock)
    assert n.enabled
    return n, clock


@pytest.mark.parametrize("kind", ["path", "abstract"])
def test_ready_status_stopping_reach_the_socket(kind, request):
    listener = request.getfixturevalue(f"{kind}_socket")
    n, _ = make(listener)
    n.ready()
    assert listener.recv() == "READY=1"
    n.ready()  # only once
    n.status("tracking,\n29.8 fps")
    assert listener.recv() == "STATUS=tracking, 29.8 fps"
    n.stopping("stopping: SIGTERM")
    assert listener.recv() == "STOPPING=1\nSTATUS=stopping: SIGTERM"
    assert listener.drain() == []
    assert n.sent == 3
    n.close()


def test_extend_timeout_says_why_and_only_before_ready(path_socket):
    n, _ = make(path_socket)
    n.extend_timeout(210.0, "starting: decoding\nthe base")
    assert path_socket.recv() == "EXTEND_TIMEOUT_USEC=210000000\nSTATUS=starting: decoding the base"
    n.status("tracking")  # not held back by the once-a-second limit
    assert path_socket.recv() == "STATUS=tracking"
    n.ready()
    assert path_socket.recv() == "READY=1"
    n.extend_timeout(30.0, "too late")  # systemd ignores it once started; nothing is sent
    assert path_socket.drain() == []
    n.close()


def test_status_is_rate_limited_to_once_a_second(path_socket):
    n, clock = make(path_socket)
    for i in range(10):  # a loop calling every 10 ms for 0.1 s
        n.status(f"s{i}")
        clock.t += 0.01
    assert path_socket.drain() == ["STATUS=s0"]
    clock.t += 1.0
    n.status("later")
    n.status("too soon")
    n.status("forced", force=True)
    assert path_socket.drain() == ["STATUS=later", "STATUS=forced"]


def test_watchdog_pings_at_twice_the_recommended_rate(path_socket):
    n, clock = make(path_socket, WATCHDOG_USEC="10000000")
    assert n.watchdog_timeout_s == 10.0
    assert n.watchdog_interval_s == 5.0
    pings = 0
    for _ in range(1000):  # 10 s of a 100 Hz loop
        n.watchdog()
        clock.t += 0.01
    pings = path_socket.drain()
    assert set(pings) == {"WATCHDOG=1"}
    assert 3 <= len(pings) <= 5  # one every 2.5 s: never more than 2.5 s between pings


def test_no_watchdog_without_watchdog_usec(path_socket):
    n = Notifier(environ={"NOTIFY_SOCKET": path_socket.env_value})
    assert n.watchdog_interval_s is None
    n.watchdog()
    assert path_socket.drain() == []


def test_watchdog_meant_for_another_pid_is_ignored(path_socket):
    env = {"NOTIFY_SOCKET": path_socket.env_value, "WATCHDOG_USEC": "2000000"}
    other = Notifier(environ={**env, "WATCHDOG_PID": str(os.getpid() + 1)})
    assert other.watchdog_interval_s is None
    mine = Notifier(environ={**env, "WATCHDOG_PID": str(os.getpid())})
    assert mine.watchdog_interval_s == 1.0
    for bad in ("abc", "0", "-5"):
        assert Notifier(environ={**env, "WATCHDOG_USEC": bad}).watchdog_interval_s is None


def test_a_dead_socket_never_raises_and_is_logged_once(caplog):
    d = tempfile.mkdtemp(prefix="ml-", dir="/tmp")
    try:
        n = Notifier(environ={"NOTIFY_SOCKET": os.path.join(d, "gone")})
        with caplog.at_level(logging.WARNING, logger="appliance.service"):
            for _ in range(50):
                n.status("x", force=True)
        assert n.sent == 0
        lines = [r for r in caplog.records if "sd_notify" in r.getMessage()]
        assert len(lines) == 1
    finally:
        shutil.rmtree(d)


def test_bad_notify_socket_value_disables(caplog):
    with caplog.at_level(logging.WARNING, logger="appliance.service"):
        n = Notifier(environ={"NOTIFY_SOCKET": "not-absolute"})
    assert not n.enabled
    assert "NOTIFY_SOCKET" in caplog.text


# -- logging --------------------------------------------------------------------------------


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_journal_stream_lines_have_priority_prefix_and_no_timestamp(tmp_path, restore_logging):
    path = tmp_path / "stderr"
    with path.open("w") as f:
        st = os.fstat(f.fileno())
        journal = setup_logging(
            "debug", stream=f, environ={"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
        )
        assert journal
        log = logging.getLogger("monalisa.test")
        log.debug("d")
        log.info("camera running")
        log.warning("slow")
        log.error("camera failed")
        log.critical("dead")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("caught")
    lines = path.read_text().splitlines()
    assert lines[:5] == [
        "<7>monalisa.test: d",
        "<6>monalisa.test: camera running",
        "<4>monalisa.test: slow",
        "<3>monalisa.test: camera failed",
        "<2>monalisa.test: dead",
    ]
    # Every traceback line carries the priority, so journald files it as an error too.
    assert lines[5] == "<3>monalisa.test: caught"
    assert len(lines) > 7 and all(line.startswith("<3>") for line in lines[5:])
    assert any("ValueError: boom" in line for line in lines)


def test_plain_lines_have_timestamps_when_not_on_the_journal(tmp_path, restore_logging):
    path = tmp_path / "stderr"
    with path.open("w") as f:
        # JOURNAL_STREAM set but naming another file (stderr redirected): not the journal.
        assert not setup_logging("info", stream=f, environ={"JOURNAL_STREAM": "1:2"})
        logging.getLogger("monalisa.test").debug("hidden")
        logging.getLogger("monalisa.test").warning("shown")
    (line,) = path.read_text().splitlines()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING monalisa\.test: shown", line)


def test_setup_logging_twice_does_not_duplicate_lines(restore_logging):
    buf = io.StringIO()
    setup_logging("info", stream=buf, environ={})
    setup_logging("warning", stream=buf, environ={})
    logging.getLogger("monalisa.test").warning("once")
    logging.getLogger("monalisa.test").info("filtered")
    assert buf.getvalue().count("once") == 1
    assert "filtered" not in buf.getvalue()


def test_log_levels():
    assert service.parse_level("DEBUG") == logging.DEBUG
    assert service.parse_level("warning") == logging.WARNING
    assert service.parse_level(logging.ERROR) == logging.ERROR
    with pytest.raises(ValueError, match="'loud'"):
        service.parse_level("loud")


def test_no_module_imports_a_systemd_library():
    """sd_notify has one path, the notifier's own datagram: no systemd-python to build."""
    root = Path(service.__file__).parent
    offenders = [
        p.name
        for p in root.rglob("*.py")
        if re.search(r"^\s*(import systemd|from systemd)", p.read_text(), re.MULTILINE)
    ]
    assert offenders == []


# -- end to end: the real appliance under a notify socket -----------------------------------


def start_app(clip: Path, tmp: Path, listener: Listener, *extra: str, **env: str):
    e = app_env(NOTIFY_SOCKET=listener.env_value, **env)
    args = [
        "run",
        "--camera",
        f"replay:{clip}",
        "--display",
        "headless",
        "--replay-speed",
        "realtime",
        "--status-file",
        str(tmp / "status.json"),
        *extra,
    ]
    return subprocess.Popen(
        [*monalisa_for(e), *args], env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def collect(listener: Listener, seconds: float) -> list[tuple[float, str]]:
    """Messages (monotonic arrival time, text) received over ``seconds``."""
    out = []
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        m = listener.recv(min(left, 0.2))
        if m is not None:
            out.append((time.monotonic(), m))
    return out


def wait_for(listener: Listener, needle: str, timeout: float) -> list[tuple[float, str]]:
    out = []
    end = time.monotonic() + timeout
    while (left := end - time.monotonic()) > 0:
        m = listener.recv(min(left, 0.5))
        if m is not None:
            out.append((time.monotonic(), m))
            if needle in m.split("\n"):
                return out
    raise AssertionError(f"no {needle} within {timeout} s; got {[m for _, m in out]}")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def test_ready_once_then_watchdog_pings_then_stopping_on_sigterm(
    astronaut_clip, tmp_path, path_socket
):
    proc = start_app(astronaut_clip, tmp_path, path_socket, WATCHDOG_USEC="2000000")
    try:
        # Model and frames load first: READY only once the portrait is on screen.
        got = wait_for(path_socket, "READY=1", timeout=60)
        assert not any("WATCHDOG=1" in m for _, m in got[:-1])
        ready_at = got[-1][0]
        msgs = collect(path_socket, 3.0)
        pings = [t for t, m in msgs if "WATCHDOG=1" in m.split("\n")]
        statuses = [m for _, m in msgs if m.startswith("STATUS=")]
        assert not any("READY=1" in m for _, m in msgs)  # once only
        # WatchdogSec=2 s: a ping at least every second while the loop runs.
        assert len(pings) >= 3
        gaps = np.diff([ready_at, *pings])
        assert gaps.max() < 2.0
        assert 2 <= len(statuses) <= 4  # at most once a second
        assert re.search(r"fps", statuses[-1])
        assert (tmp_path / "status.json").exists()
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=5)
        took = time.monotonic() - t0
        rest = [m for _, m in collect(path_socket, 0.3)]
        assert any("STOPPING=1" in m.split("\n") for m in rest)
        assert rc == 0
        assert took < 2.0
    finally:
        stop(proc)


def test_watchdog_pings_stop_when_the_loop_hangs(astronaut_clip, tmp_path, path_socket):
    proc = start_app(
        astronaut_clip,
        tmp_path,
        path_socket,
        WATCHDOG_USEC="2000000",
        MONALISA_FAULT="hang_after:30",
    )
    try:
        wait_for(path_socket, "READY=1", timeout=60)
        msgs = collect(path_socket, 4.0)  # 30 frames at 30 fps, then the hang
        pings = [t for t, m in msgs if "WATCHDOG=1" in m.split("\n")]
        assert pings, "no watchdog ping before the hang"
        # Past the watchdog timeout with no ping: systemd would now kill and restart it.
        silence = time.monotonic() - pings[-1]
        late = collect(path_socket, max(0.0, 2.5 - silence))
        assert not any("WATCHDOG=1" in m for _, m in late)
        assert proc.poll() is None, "a hung loop keeps the process alive (systemd kills it)"
    finally:
        stop(proc)


def cached_then_stopped(proc: subprocess.Popen[str], listener: Listener, cache: Path) -> None:
    """Wait for the one cache file (written off the render loop, after READY), then SIGTERM:
    the appliance must exit 0."""
    end = time.monotonic() + 60
    while not list(cache.glob("portrait-*.npz")) and time.monotonic() < end:
        collect(listener, 0.2)
    assert len(list(cache.glob("portrait-*.npz"))) == 1
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0


def test_first_start_extends_the_timeout_and_the_next_reads_the_cache(
    astronaut_clip, tmp_path, path_socket
):
    """A cache miss decodes the base: EXTEND_TIMEOUT_USEC and the reason before READY=1; the
    scaled portrait is then cached ($CACHE_DIRECTORY, as CacheDirectory= sets it) and the next
    start sends READY=1 without asking for more time."""
    cache = tmp_path / "cache"
    for start in ("cold", "warm"):
        proc = start_app(astronaut_clip, tmp_path, path_socket, CACHE_DIRECTORY=str(cache))
        try:
            got = [m for _, m in wait_for(path_socket, "READY=1", timeout=120)]
            extends = [m for m in got if m.startswith("EXTEND_TIMEOUT_USEC=")]
            if start == "cold":
                assert len(extends) == 1, got
                usec, status = extends[0].split("\n")
                assert int(usec.split("=")[1]) >= 60_000_000
                assert "base image" in status and "512x512" in status
            else:
                assert extends == [], got
            cached_then_stopped(proc, path_socket, cache)
        finally:
            stop(proc)
        path_socket.drain()


def test_a_set_with_a_preview_is_ready_without_asking_for_time(
    astronaut_clip, tmp_path, path_socket
):
    """A large painting's set (here the default set written with a 256 px preview): the first
    start shows the preview and sends READY=1 without EXTEND_TIMEOUT_USEC; the full base is
    decoded after READY and cached."""
    from appliance.frames import FrameSet, default_frames_dir
    from appliance.framewrite import write_set

    fs = FrameSet.load(default_frames_dir())
    folder = tmp_path / "set"
    write_set(
        folder,
        fs.base,
        fs.patches,
        rest_index=fs.rest_index,
        head_box=fs.head_box,
        preview_max=256,
        angles=fs.manifest.grid_fields["angles"],
        pitches=fs.manifest.grid_fields["pitches"],
        lids=fs.manifest.grid_fields["lids"],
    )
    cache = tmp_path / "cache"
    proc = start_app(
        astronaut_clip, tmp_path, path_socket, "--frames", str(folder), CACHE_DIRECTORY=str(cache)
    )
    try:
        got = [m for _, m in wait_for(path_socket, "READY=1", timeout=120)]
        assert not any(m.startswith("EXTEND_TIMEOUT_USEC=") for m in got), got
        cached_then_stopped(proc, path_socket, cache)
    finally:
        stop(proc)


def test_a_version_1_set_extends_the_timeout_and_is_named(astronaut_clip, tmp_path, path_socket):
    """Every frame of a version 1 set is decoded before the first: more time is asked for."""
    from appliance.frames import FrameSet, default_frames_dir
    from tests.support.frames import write_v1

    v1 = write_v1(FrameSet.load(default_frames_dir()), tmp_path / "v1")
    proc = start_app(astronaut_clip, tmp_path, path_socket, "--frames", str(v1))
    try:
        got = [m for _, m in wait_for(path_socket, "READY=1", timeout=120)]
        assert any(
            m.startswith("EXTEND_TIMEOUT_USEC=") and "decoding 33 frames" in m for m in got
        ), got
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0
        assert "a version 1 frame set" in err and "monalisa frames convert" in err
    finally:
        stop(proc)


def test_no_ready_and_exit_78_on_a_bad_frame_set(astronaut_clip, tmp_path, path_socket):
    bad = tmp_path / "frames"
    bad.mkdir()
    (bad / "frames.toml").write_text("count = 1\n")
    proc = start_app(astronaut_clip, tmp_path, path_socket, "--frames", str(bad))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 78
    assert str(bad) in err or "frames.toml" in err
    assert not any("READY=1" in m for _, m in collect(path_socket, 0.2))


def test_bad_config_exits_78_naming_the_key(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text('[health]\nstale_after_s = -1\n[service]\nlog_level = "loud"\n')
    res = subprocess.run(
        [*MONALISA, "run", "--config", str(cfg), "--display", "headless"],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
    )
    assert res.returncode == 78
    assert f"{cfg}: health.stale_after_s = -1" in res.stderr
    assert f"{cfg}: service.log_level = 'loud'" in res.stderr


def test_a_lost_notification_is_warned_once_then_its_return(tmp_path, caplog):
    """Rate limits live in the notifier: five failed sends give one warning, then one 'again'."""
    path = tmp_path / "notify.sock"
    n = Notifier(environ={"NOTIFY_SOCKET": str(path)}, clock=FakeClock())
    with caplog.at_level(logging.INFO, logger="appliance.service"):
        for i in range(5):
            n.status(f"s{i}", force=True)  # nobody listens: ENOENT
        assert n.sent == 0
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(path))
        try:
            n.status("back", force=True)
            assert sock.recv(4096) == b"STATUS=back"
        finally:
            sock.close()
    said = [r.getMessage() for r in caplog.records]
    assert len([m for m in said if "failed" in m]) == 1, said
    assert any("delivers again" in m for m in said), said
