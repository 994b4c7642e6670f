"""appliance.status: the status file's one definition, its atomic writer, the Pi's sensors."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from appliance.status import (
    CameraStatus,
    Status,
    StatusError,
    StatusWriter,
    SystemProbe,
    decode_throttled,
    parse_get_throttled,
    read_cpu_temp_c,
    read_status,
    read_throttled,
)

NOW = 1_800_000_000.0


class NoProbe(SystemProbe):
    """No sensors: a status without temperature or throttling."""

    def __init__(self) -> None:
        super().__init__(temp_path=Path("/nonexistent"), vcgencmd="")


def healthy(**over) -> dict:
    """A status as the running appliance writes it (the dict from App.status())."""
    d: dict[str, Any] = {
        "version": "0.1.0",
        "pid": os.getpid(),
        "uptime_s": 3600.0,
        "config": "/etc/monalisa/config.toml",
        "camera": {
            "source": "picamera2",
            "state": "running",
            "fps": 30.0,
            "last_frame_age_s": 0.03,
            "failed_for_s": None,
            "failures": 0,
            "last_error": None,
        },
        "detector_ms": 12.3,
        "loop_fps": 29.8,
        "display_fps": 12.0,
        "frame_index": 16,
        "frame_count": 33,
        "gaze_state": "tracking",
        "viewers_last_minute": 1,
        "faces_frames_last_minute": 1200,
        "last_viewer_age_s": 0.0,
        "frames": 107000,
        "errors": 0,
        "last_error": None,
        "cpu_temp_c": 54.2,
        "throttled": None,
    }
    for k, v in over.items():
        if k.startswith("camera_"):
            d["camera"] = {**d["camera"], k.removeprefix("camera_"): v}
        else:
            d[k] = v
    return d


# -- the Pi's sensors -----------------------------------------------------------------------


def test_decode_throttled_bits():
    t = decode_throttled(0x50005)
    assert t.raw == "0x50005"
    assert t.under_voltage_now and t.throttled_now
    assert not t.freq_capped_now and not t.soft_temp_limit_now
    assert t.under_voltage_since_boot and t.throttled_since_boot
    assert not t.freq_capped_since_boot and not t.soft_temp_limit_since_boot
    assert t.now_problems == ["under-voltage", "throttled"]
    assert decode_throttled(0x20000).past_problems == ["frequency capped"]
    assert decode_throttled(0x8).now_problems == ["soft temperature limit"]
    clean = decode_throttled(0)
    assert clean.now_problems == [] and clean.past_problems == []


def test_parse_get_throttled_output():
    assert parse_get_throttled("throttled=0x50000\n").raw == "0x50000"  # type: ignore[union-attr]
    assert parse_get_throttled("throttled=0x0").raw == "0x0"  # type: ignore[union-attr]
    assert parse_get_throttled("VCHI initialization failed") is None


def fake_vcgencmd(tmp_path: Path, output: str, rc: int = 0) -> Path:
    """A real executable standing in for the Pi's vcgencmd; it counts its runs."""
    exe = tmp_path / "vcgencmd"
    exe.write_text(
        f'#!/bin/sh\necho run >> "{tmp_path}/runs"\n'
        f'[ "$1" = get_throttled ] || exit 2\necho "{output}"\nexit {rc}\n'
    )
    exe.chmod(0o755)
    return exe


def test_read_throttled_runs_vcgencmd(tmp_path):
    t = read_throttled(str(fake_vcgencmd(tmp_path, "throttled=0x50005")))
    assert t is not None and t.under_voltage_now
    bad = tmp_path / "bad"
    bad.mkdir()
    assert read_throttled(str(fake_vcgencmd(bad, "throttled=0x1", rc=1))) is None
    assert read_throttled(str(tmp_path / "missing")) is None


def test_cpu_temperature_from_thermal_zone(tmp_path):
    f = tmp_path / "temp"
    f.write_text("54218\n")
    assert read_cpu_temp_c(f) == 54.2
    f.write_text("garbage")
    assert read_cpu_temp_c(f) is None
    assert read_cpu_temp_c(tmp_path / "missing") is None


def test_probe_caches_vcgencmd(tmp_path):
    t = [0.0]
    temp = tmp_path / "temp"
    temp.write_text("61000")
    probe = SystemProbe(
        temp_path=temp,
        vcgencmd=str(fake_vcgencmd(tmp_path, "throttled=0x0")),
        throttle_every_s=10.0,
        clock=lambda: t[0],
    )
    for _ in range(5):
        assert probe.throttled() is not None
        assert probe.cpu_temp_c() == 61.0
        t[0] += 1.0
    t[0] += 10.0
    probe.throttled()
    assert (tmp_path / "runs").read_text().count("run") == 2


# -- the status file ------------------------------------------------------------------------


def test_writer_creates_directory_and_a_readable_file(tmp_path):
    p = tmp_path / "run" / "monalisa" / "status.json"
    temp = tmp_path / "temp"
    temp.write_text("48500\n")
    writer = StatusWriter(
        p,
        probe=SystemProbe(temp_path=temp, vcgencmd=str(fake_vcgencmd(tmp_path, "throttled=0x4"))),
        clock=lambda: NOW,
    )
    status = Status(version="0.1.0", pid=os.getpid(), camera=CameraStatus(state="running"))
    writer.write(status)
    data = json.loads(p.read_text())
    assert data["written_at"] == NOW
    assert data["schema"] == 1
    assert data["camera"]["state"] == "running"
    assert data["cpu_temp_c"] == 48.5
    assert data["throttled"]["throttled_now"] is True
    assert stat.S_IMODE(p.stat().st_mode) == 0o644  # `monalisa health` needs no privilege
    assert sorted(x.name for x in p.parent.iterdir()) == ["status.json"]  # no temp left


def test_values_already_given_win_over_the_probe(tmp_path):
    p = tmp_path / "s.json"
    StatusWriter(p, probe=NoProbe()).write_dict({"cpu_temp_c": 40.0, "written_at": 1.0})
    data = json.loads(p.read_text())
    assert data["cpu_temp_c"] == 40.0
    assert data["throttled"] is None
    assert data["written_at"] > 1.0  # always now


def test_readers_never_see_a_partial_file(tmp_path):
    p = tmp_path / "status.json"
    writer = StatusWriter(p, probe=NoProbe())
    writer.write_dict(healthy())
    big = healthy(last_error="x" * 200_000)
    done = threading.Event()
    errors: list[str] = []

    def reader() -> None:
        while not done.is_set():
            try:
                json.loads(p.read_text())
            except ValueError as err:
                errors.append(str(err))

    th = threading.Thread(target=reader)
    th.start()
    try:
        for i in range(200):
            writer.write_dict(big if i % 2 else healthy())
    finally:
        done.set()
        th.join()
    assert errors == []


def test_write_errors_reach_the_caller_and_leave_no_temp_file(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError):
        StatusWriter(blocker / "status.json", probe=NoProbe()).write_dict({})
    target = tmp_path / "dir-in-the-way"
    target.mkdir()
    with pytest.raises(OSError):
        StatusWriter(target, probe=NoProbe()).write_dict({})
    assert sorted(x.name for x in tmp_path.iterdir()) == ["dir-in-the-way", "file"]
    with pytest.raises(ValueError):
        StatusWriter(tmp_path / "s.json", probe=NoProbe()).write_dict({"fps": float("nan")})


def test_status_never_holds_an_image():
    keys = json.dumps(Status().to_dict())
    for word in ("image", "pixels", "jpeg", "png"):
        assert word not in keys


def test_read_status_ignores_unknown_keys_and_names_a_bad_one():
    status, data = read_status(json.dumps({**healthy(), "written_at": NOW, "from_the_future": 1}))
    assert status.camera.state == "running" and status.written_at == NOW
    assert data["from_the_future"] == 1
    with pytest.raises(StatusError, match=r"^camera.fps = '30': not a number$"):
        read_status(json.dumps({**healthy(camera_fps="30"), "written_at": NOW}))
    with pytest.raises(StatusError, match=r"^loop_fps = True: not a number$"):
        read_status(json.dumps({**healthy(loop_fps=True), "written_at": NOW}))


def test_what_the_writer_writes_reads_back_as_the_same_status(tmp_path):
    p = tmp_path / "s.json"
    s = Status(pid=7, uptime_s=3.5, camera=CameraStatus(state="running", hfov_deg=52.1))
    StatusWriter(p, probe=NoProbe(), clock=lambda: NOW).write(s)
    back, data = read_status(p.read_text())
    assert back == s.model_copy(update={"written_at": NOW})
    assert data["schema"] == 1
