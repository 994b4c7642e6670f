"""Monitor standby and wake over HDMI-CEC, against a stand-in ``cec-ctl`` on PATH.

The stand-in records its arguments, one call per line, and exits with ``$CEC_RC`` (writing
``$CEC_ERR`` to stderr), or hangs with ``$CEC_HANG``; the device node is a plain file.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from appliance.screenpower import ScreenPower, cec_argv

STAND_IN = """#!/bin/sh
printf '%s\\n' "$*" >> "$CEC_LOG"
if [ -n "$CEC_HANG" ]; then exec sleep 30; fi
if [ -n "$CEC_ERR" ]; then printf 'cec-ctl: %s\\n' "$CEC_ERR" >&2; fi
exit "${CEC_RC:-0}"
"""


@pytest.fixture
def cec(tmp_path, monkeypatch):
    """A stand-in cec-ctl on PATH, a /dev/cec0 stand-in, and the file of recorded calls."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    program = bin_dir / "cec-ctl"
    program.write_text(STAND_IN)
    program.chmod(program.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    log = tmp_path / "calls.log"
    monkeypatch.setenv("CEC_LOG", str(log))
    for name in ("CEC_RC", "CEC_ERR", "CEC_HANG"):
        monkeypatch.delenv(name, raising=False)
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "cec1").touch()
    (dev / "cec0").touch()
    return {"devices": str(dev / "cec*"), "log": log, "dev0": str(dev / "cec0")}


def calls(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_off_puts_the_monitor_to_standby_and_wakes_it(cec, caplog):
    caplog.set_level(logging.INFO)
    screen = ScreenPower("off", devices=cec["devices"])
    assert screen.sleep() == "off"
    assert screen.asleep
    assert screen.wake() is True
    assert not screen.asleep
    dev = cec["dev0"]
    assert calls(cec["log"]) == [
        f"-d {dev} --playback --to 0 --standby",
        f"-d {dev} --playback --to 0 --image-view-on",
    ]
    assert warnings(caplog) == []
    assert any("standby" in r.getMessage() for r in caplog.records)


def test_wake_without_sleep_sends_nothing(cec):
    screen = ScreenPower("off", devices=cec["devices"])
    assert screen.wake() is True
    assert calls(cec["log"]) == []


@pytest.mark.parametrize("mode", ["black", "rest"])
def test_black_and_rest_never_call_cec(cec, caplog, mode):
    screen = ScreenPower(mode, devices=cec["devices"])
    assert screen.sleep() == mode
    assert screen.wake() is True
    assert calls(cec["log"]) == []
    assert warnings(caplog) == []


def test_failing_cec_falls_back_to_black_with_one_warning(cec, caplog, monkeypatch):
    monkeypatch.setenv("CEC_RC", "1")
    monkeypatch.setenv("CEC_ERR", "Standby: Transmit failed (NACK)")
    screen = ScreenPower("off", devices=cec["devices"])
    assert screen.sleep() == "black"
    assert screen.wake() is True  # it never went to sleep
    assert screen.sleep() == "black"  # tried again at the next closing, not warned again
    assert len(calls(cec["log"])) == 2
    monkeypatch.delenv("CEC_RC")
    assert screen.sleep() == "off"  # one failure does not turn monitor control off
    assert warnings(caplog) == [
        f"screen: `cec-ctl --standby` on {cec['dev0']} failed (exit 1): cec-ctl: Standby: "
        "Transmit failed (NACK); while closed the screen is black instead of off"
    ]


def test_hanging_cec_times_out(cec, caplog, monkeypatch):
    monkeypatch.setenv("CEC_HANG", "1")
    screen = ScreenPower("off", devices=cec["devices"], timeout_s=0.3)
    assert screen.sleep() == "black"
    assert warnings(caplog) == [
        f"screen: `cec-ctl --standby` on {cec['dev0']} took over 0.3 s; while closed the "
        "screen is black instead of off"
    ]


def test_no_cec_device_falls_back_with_one_warning(cec, caplog, tmp_path):
    pattern = str(tmp_path / "nodev" / "cec*")
    screen = ScreenPower("off", devices=pattern)
    assert screen.sleep() == "black"
    assert screen.sleep() == "black"
    assert calls(cec["log"]) == []
    assert warnings(caplog) == [
        f"screen: no HDMI-CEC device ({pattern}); while closed the screen is black instead of off"
    ]


def test_no_cec_ctl_program_falls_back_with_one_warning(cec, caplog):
    screen = ScreenPower("off", cec_ctl="cec-ctl-not-installed", devices=cec["devices"])
    assert screen.sleep() == "black"
    assert screen.sleep() == "black"
    assert warnings(caplog) == [
        "screen: cec-ctl-not-installed not found (apt install v4l-utils); while closed the "
        "screen is black instead of off"
    ]


def test_a_failed_wake_at_start_counts_the_monitor_asleep(cec, caplog, monkeypatch):
    monkeypatch.setenv("CEC_RC", "1")
    screen = ScreenPower("off", devices=cec["devices"])
    assert screen.wake_at_start() is False
    assert screen.asleep  # so that wake() tries again
    assert screen.wake() is False
    assert len(warnings(caplog)) == 1  # the same problem: once an hour
    monkeypatch.delenv("CEC_RC")
    caplog.set_level(logging.INFO)
    assert screen.wake() is True and not screen.asleep
    assert any("woken" in r.getMessage() for r in caplog.records)
    assert [c.split()[-1] for c in calls(cec["log"])] == ["--image-view-on"] * 3
    assert ScreenPower("rest", devices=cec["devices"]).wake_at_start() is True
    assert len(calls(cec["log"])) == 3  # nothing sent in 'rest' mode


def test_failed_wake_warns_and_is_retried(cec, caplog, monkeypatch):
    screen = ScreenPower("off", devices=cec["devices"])
    assert screen.sleep() == "off"
    monkeypatch.setenv("CEC_RC", "5")
    assert screen.wake() is False
    assert screen.asleep
    assert warnings(caplog) == [
        f"screen: cannot wake the monitor: `cec-ctl --image-view-on` on {cec['dev0']} failed "
        "(exit 5)"
    ]
    monkeypatch.delenv("CEC_RC")
    assert screen.wake() is True
    assert not screen.asleep
    assert [c.split()[-1] for c in calls(cec["log"])] == [
        "--standby",
        "--image-view-on",
        "--image-view-on",
    ]


@pytest.mark.skipif(shutil.which("cec-ctl") is None, reason="needs cec-ctl (apt install v4l-utils)")
@pytest.mark.parametrize("message", ["--standby", "--image-view-on"])
def test_the_real_cec_ctl_understands_the_command(tmp_path, message):
    """Without an adapter it cannot send, but it must get as far as opening the device."""
    missing = str(tmp_path / "cec9")
    done = subprocess.run(
        cec_argv("cec-ctl", missing, message), capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 1
    assert done.stderr.strip() == f"Failed to open {missing}: No such file or directory"
