"""The unit's restart cycle with a camera that hangs: systemd's fresh process brings it back.

The unit's own ``ExecStart=`` (deploy/monalisa.service; the venv's ``monalisa`` is this
interpreter's, and a config file stands in for ``/etc/monalisa/config.toml``) runs under a real
``NOTIFY_SOCKET`` with the unit's ``WatchdogSec=`` as ``WATCHDOG_USEC``. There is no systemd
here (PID 1 is not systemd), so a small restarter stands in for ``Restart=always``: it starts
the command again after each exit, honours ``RestartPreventExitStatus=`` and checks that the
starts stay within ``StartLimitBurst=`` per ``StartLimitIntervalSec=``.

The camera hangs in ``open(2)`` on a FIFO nobody writes to (``camera_hang_while``) until the
test removes it: the first processes hand themselves over (exit 75); once the camera works
again, the next one tracks and ``monalisa health`` says OK.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from appliance.frames import default_frames_dir
from benchmarks.soak import make_clip
from tests.support.run import MONALISA, MONALISA_WITH_FAULTS, REPO, app_env
from tests.support.unit_run import check_health_while_tracking, unit_value
from tests.test_resilience import Notify

UNIT = REPO / "deploy" / "monalisa.service"
FAILED_STARTS = 2
"""Processes that hand over before the camera works again."""


@pytest.mark.slow
def test_the_units_restart_cycle_ends_in_a_tracking_appliance(tmp_path: Path) -> None:
    unit = UNIT.read_text("utf-8")
    assert unit_value(unit, "Restart") == "always"
    no_restart = {int(v) for v in unit_value(unit, "RestartPreventExitStatus").split()}
    burst = int(unit_value(unit, "StartLimitBurst"))
    interval_s = float(unit_value(unit, "StartLimitIntervalSec"))
    restart_s = float(unit_value(unit, "RestartSec"))
    watchdog_s = float(unit_value(unit, "WatchdogSec"))
    command = shlex.split(unit_value(unit, "ExecStart"))
    assert Path(command[0]).name == "monalisa" and command[1] == "run"
    at = command.index("--config") + 1
    config = tmp_path / "config.toml"  # stands in for the installed config
    status = tmp_path / "status.json"
    clip = make_clip(tmp_path / "clip")
    config.write_text(
        f"""
[camera]
source = "replay:{clip}"
replay_speed = "realtime"
retry_initial_s = 0.2
retry_max_s = 1.0
stall_after_s = 1.0

[display]
driver = "headless"

[service]
status_file = "{status}"
status_interval_s = 0.25

[health]
stale_after_s = 3.0
""",
        "utf-8",
    )
    argv = [*MONALISA_WITH_FAULTS, *command[1:at], str(config), *command[at + 1 :]]
    fifo = tmp_path / "camera.fifo"
    os.mkfifo(fifo)
    sockdir = Path(tempfile.mkdtemp(prefix="ml-", dir="/tmp"))  # short AF_UNIX path
    notify = Notify(sockdir)
    env = app_env(
        NOTIFY_SOCKET=str(notify.path),
        WATCHDOG_USEC=str(int(watchdog_s * 1e6)),
        MONALISA_FAULT=f"camera_hang_while:{fifo}",
    )
    starts: list[float] = []

    def start() -> subprocess.Popen[str]:
        now = time.monotonic()
        starts.append(now)
        recent = [t for t in starts if now - t <= interval_s]
        assert len(recent) <= burst, "systemd's start limit would leave the unit failed"
        return subprocess.Popen(
            argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )

    def health() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*MONALISA, "health", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            env=app_env(),
        )

    def camera_state() -> str | None:
        try:
            return str(json.loads(status.read_text("utf-8"))["camera"]["state"])
        except (OSError, ValueError, KeyError):
            return None

    def never_ok_until_the_camera_runs(proc: subprocess.Popen[str]) -> list[str]:
        """Poll health while ``proc`` runs: OK only once its camera delivers; the lines."""
        said: list[str] = []
        while proc.poll() is None:
            said.append(line := health().stdout)
            if line.startswith("MONALISA OK"):
                assert camera_state() == "running", line
                break
            time.sleep(0.3)
        return said

    try:
        for cycle in range(FAILED_STARTS):
            proc = start()
            began = time.monotonic()
            if cycle:  # after a hand-over, health is never OK while the camera is lost
                lines = never_ok_until_the_camera_runs(proc)
                assert any("camera lost" in ln or "camera failed" in ln for ln in lines), lines
            out = proc.communicate(timeout=300)[0]
            assert proc.returncode == 75, out[-3000:]  # restarted: not 0, not in no_restart
            assert proc.returncode not in no_restart
            assert time.monotonic() - began < 90  # no frame ever came: handed over in time
            assert "exiting so that systemd restarts the appliance" in out
            assert "Traceback" not in out
            time.sleep(min(restart_s, 1.0))  # RestartSec=, shortened for the test
            assert json.loads(status.read_text("utf-8"))["camera"]["handed_over_at"]
        fifo.unlink()  # the camera works again
        proc = start()
        never_ok_until_the_camera_runs(proc)
        said = check_health_while_tracking(proc, status, str(default_frames_dir()), 120, health)
        assert said.startswith("MONALISA OK - tracking")
        assert len(starts) == FAILED_STARTS + 1
        assert len(notify.times("READY=1")) == FAILED_STARTS + 1
    finally:
        notify.close()
        shutil.rmtree(sockdir, ignore_errors=True)
