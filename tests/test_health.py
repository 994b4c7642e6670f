"""appliance.health: the status file, the Pi's sensors, and the Nagios-style `monalisa health`."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.config import ConfigError, HealthConfig, parse_config
from appliance.health import CRITICAL, OK, UNKNOWN, WARNING, check
from appliance.status import CameraStatus, Status, StatusWriter
from tests.test_status import NOW, NoProbe, healthy


def write(path: Path, data: dict, age_s: float = 0.5) -> None:
    StatusWriter(path, probe=NoProbe(), clock=lambda: NOW - age_s).write_dict(data)


def verdict(tmp_path: Path, cfg: HealthConfig | None = None, age_s: float = 0.5, **over):
    p = tmp_path / "status.json"
    write(p, healthy(**over), age_s)
    return check(p, cfg, now=NOW)


# -- the verdict ----------------------------------------------------------------------------


def test_healthy_is_ok_with_a_nagios_line(tmp_path):
    r = verdict(tmp_path)
    assert r.code == OK
    assert r.line == (
        "MONALISA OK - tracking, 29.8 fps, camera running, 54.2°C, 1 viewer in the last minute"
        " | age=0.5s;;5;0 fps=29.8;10;;0 display_fps=12.0;;;0 detector_ms=12.3;;;0"
        " cpu_temp=54.2;75;; viewers=1;;;0 camera_failures=0c;;;0 uptime=3600s;;;0"
    )


def test_missing_status_is_critical(tmp_path):
    r = check(tmp_path / "nope.json", now=NOW)
    assert r.code == CRITICAL
    assert r.line.startswith("MONALISA CRITICAL - no status file")


def test_stale_status_is_critical_and_shows_the_last_error(tmp_path):
    r = verdict(tmp_path, age_s=12.0, last_error="camera: read failed")
    assert r.code == CRITICAL
    assert "status is 12 s old (stale after 5 s)" in r.summary
    assert "last error: camera: read failed" in r.summary
    cfg = HealthConfig(stale_after_s=20.0)
    assert verdict(tmp_path, cfg, age_s=12.0).code == OK


def test_process_gone_is_critical_even_while_fresh(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = int(proc.stdout)
    r = verdict(tmp_path, pid=dead)
    assert r.code == CRITICAL
    assert f"pid {dead}) is not running" in r.summary


def test_camera_failure_warns_then_goes_critical(tmp_path):
    short = verdict(
        tmp_path,
        camera_state="failed",
        camera_failed_for_s=10.0,
        camera_last_error="picamera2: no camera",
        loop_fps=0.0,
    )
    assert short.code == WARNING
    assert "camera failed for 10 s: picamera2: no camera" in short.summary
    assert "low frame rate" not in short.summary  # the camera is the problem, not speed
    long = verdict(tmp_path, camera_state="failed", camera_failed_for_s=90.0)
    assert long.code == CRITICAL
    cfg = HealthConfig(camera_failed_critical_s=300)
    assert verdict(tmp_path, cfg, camera_state="failed", camera_failed_for_s=90.0).code == WARNING


def test_a_camera_handed_over_to_a_fresh_process_warns_until_it_delivers(tmp_path):
    """The process after a hand-over (exit 75) is starting its camera: not OK yet."""
    gone = NOW - 20.0
    starting = verdict(tmp_path, camera_state="starting", camera_handed_over_at=gone, uptime_s=3.0)
    assert starting.code == WARNING
    assert "camera lost: restarted for a fresh camera stack 20 s ago" in starting.summary
    failed = verdict(tmp_path, camera_state="failed", camera_handed_over_at=gone)
    assert failed.code == WARNING and "camera failed for" in failed.summary
    assert verdict(tmp_path, camera_state="running", camera_handed_over_at=gone).code == OK


def test_stopped_camera_is_critical(tmp_path):
    assert verdict(tmp_path, camera_state="stopped").code == CRITICAL


def test_low_fps_warns_but_not_while_starting(tmp_path):
    r = verdict(tmp_path, loop_fps=6.5)
    assert r.code == WARNING
    assert r.summary.startswith("low frame rate: 6.5 fps (warning below 10); tracking, 6.5 fps")
    assert verdict(tmp_path, loop_fps=6.5, uptime_s=5.0).code == OK
    assert verdict(tmp_path, HealthConfig(min_fps_warning=5), loop_fps=6.5).code == OK


def test_not_started_after_grace_is_critical(tmp_path):
    assert verdict(tmp_path, gaze_state="starting", uptime_s=10.0).code == OK
    r = verdict(tmp_path, gaze_state="starting", uptime_s=45.0)
    assert r.code == CRITICAL
    assert "no portrait on screen 45 s after start" in r.summary


def test_waiting_for_the_screen_warns_however_long_it_takes(tmp_path):
    wait = {
        "driver": "kmsdrm",
        "waiting_s": 3600.0,
        "attempts": 724,
        "last_error": "cannot open the kmsdrm display (SDL driver kmsdrm): no monitor",
    }
    r = verdict(tmp_path, gaze_state="starting", uptime_s=3601.0, screen_wait=wait)
    assert r.code == WARNING  # not "no portrait on screen" CRITICAL: it waits on purpose
    assert r.summary.startswith(
        "waiting for the kmsdrm screen for 3600 s (724 attempts): cannot open the kmsdrm "
        "display (SDL driver kmsdrm): no monitor; starting"
    )
    r = verdict(tmp_path, age_s=30.0, gaze_state="starting", screen_wait=wait)
    assert r.code == CRITICAL  # a waiting process must still write its status
    assert verdict(tmp_path, screen_wait=None).code == OK


def test_hot_cpu_warns(tmp_path):
    r = verdict(tmp_path, cpu_temp_c=81.0)
    assert r.code == WARNING
    assert "CPU at 81.0°C (warning at 75°C)" in r.summary
    assert verdict(tmp_path, HealthConfig(temp_warning_c=85), cpu_temp_c=81.0).code == OK


def test_throttling_now_warns_past_only_when_asked(tmp_path):
    now = {"raw": "0x50005"}
    r = verdict(tmp_path, throttled=now)
    assert r.code == WARNING
    assert "power/thermal: under-voltage, throttled (0x50005)" in r.summary
    past = {"raw": "0x50000"}
    ok = verdict(tmp_path, throttled=past)
    assert ok.code == OK
    assert any("since boot: under-voltage" in c.message for c in ok.checks)
    cfg = HealthConfig(warn_on_past_throttling=True)
    assert verdict(tmp_path, cfg, throttled=past).code == WARNING


def test_no_viewer_for_too_long_warns(tmp_path):
    day = 86400.0
    r = verdict(tmp_path, last_viewer_age_s=day + 1, viewers_last_minute=0)
    assert r.code == WARNING
    assert "no viewer for 24.0 h" in r.summary
    never = verdict(tmp_path, last_viewer_age_s=None, uptime_s=2 * day)
    assert never.code == WARNING
    off = HealthConfig(no_viewer_warning_s=0)
    assert verdict(tmp_path, off, last_viewer_age_s=10 * day).code == OK


def closed(**over) -> dict:
    """A status while closed, as the loop writes it: camera stopped, nobody, 0 fps."""
    schedule = {
        "open": False,
        "until": datetime.fromtimestamp(NOW + 10 * 3600, UTC).isoformat(),
        "text": "closed until Tue 10:00",
        "screen": "off",
        "unseen_open_s": 600.0,
    }
    return {
        "gaze_state": "closed",
        "camera_state": "stopped",
        "camera_fps": 0.0,
        "loop_fps": 0.0,
        "display_fps": 0.0,
        "viewers_last_minute": 0,
        "last_viewer_age_s": 3 * 86400.0,  # a closed weekend
        "schedule": schedule,
    } | over


def test_closed_is_ok_with_the_next_opening_and_no_camera_fps_or_viewer_warning(tmp_path):
    r = verdict(tmp_path, **closed())
    assert r.code == OK, r.line
    assert r.line.startswith("MONALISA OK - closed until Tue 10:00, camera stopped, 54.2°C | ")
    perf = r.line.split(" | ", 1)[1].split()
    assert "open=0;;;0;1" in perf
    assert all("=" in item for item in perf)  # parseable
    assert {c.name: c.state for c in r.checks}["schedule"] == "OK"


def test_closed_but_stale_or_hot_is_still_a_problem(tmp_path):
    stale = verdict(tmp_path, age_s=12.0, **closed())
    assert stale.code == CRITICAL
    assert stale.summary.startswith("status is 12 s old")
    gone = verdict(tmp_path, **closed(pid=2**22 + 12345))
    assert gone.code == CRITICAL
    hot = verdict(tmp_path, **closed(cpu_temp_c=81.0))
    assert hot.code == WARNING


def test_still_closed_after_the_announced_opening_warns(tmp_path):
    opens = datetime.fromtimestamp(NOW - 600, UTC).isoformat()  # 10 min before the status
    hours = closed()["schedule"] | {"until": opens}
    r = verdict(tmp_path, **closed(schedule=hours))
    assert r.code == WARNING
    assert r.summary.startswith("still closed 10 min after the opening time")
    soon = datetime.fromtimestamp(NOW + 60, UTC).isoformat()
    assert verdict(tmp_path, **closed(schedule=hours | {"until": soon})).code == OK


def test_open_with_hours_counts_only_opening_hours_without_a_viewer(tmp_path):
    # Tuesday 10:05 after a closed weekend: 3 days since the last viewer, 5 min of them open.
    hours = {"open": True, "until": "2026-12-08T18:00:00+01:00", "text": "open until 18:00"}
    tuesday = verdict(
        tmp_path,
        last_viewer_age_s=3 * 86400.0,
        viewers_last_minute=0,
        schedule=hours | {"unseen_open_s": 300.0},
    )
    assert tuesday.code == OK, tuesday.line
    assert "open=1;;;0;1" in tuesday.line
    # A whole day of opening hours without anybody is still worth a look.
    long = verdict(
        tmp_path, last_viewer_age_s=5 * 86400.0, schedule=hours | {"unseen_open_s": 86400.0}
    )
    assert long.code == WARNING
    assert "no viewer for 24.0 h" in long.summary


def test_worst_check_wins(tmp_path):
    r = verdict(tmp_path, cpu_temp_c=80.0, camera_state="failed", camera_failed_for_s=600.0)
    assert r.code == CRITICAL
    assert [c.state for c in r.checks if c.code] == ["CRITICAL", "WARNING"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"pid": 1}', "written_at is missing"),
        ('{"written_at": "yesterday"}', "written_at = 'yesterday': not a number"),
        ('{"written_at": 1, "camera": 5}', "camera = 5: not a table"),
        ('{"written_at": 1, "throttled": {"raw": "zz"}}', "no valid 'raw'"),
        ("", "not JSON"),
    ],
)
def test_corrupt_status_is_unknown(tmp_path, content, why):
    p = tmp_path / "status.json"
    p.write_text(content)
    r = check(p, now=NOW)
    assert r.code == UNKNOWN
    assert r.line.startswith(f"MONALISA UNKNOWN - {p}: corrupt status file")
    assert why in r.summary


def test_unreadable_status_is_unknown(tmp_path):
    r = check(tmp_path, now=NOW)  # a directory
    assert r.code == UNKNOWN
    assert "cannot read" in r.summary


def test_a_status_from_the_dataclass_is_judged(tmp_path):
    p = tmp_path / "s.json"
    s = Status(
        pid=os.getpid(),
        uptime_s=100,
        loop_fps=25.0,
        gaze_state="idle",
        camera=CameraStatus(state="running", fps=25.0),
    )
    StatusWriter(p, probe=NoProbe(), clock=lambda: NOW).write(s)
    r = check(p, now=NOW + 1)
    assert r.code == OK, r.line
    assert r.line.startswith("MONALISA OK - idle, 25.0 fps, camera running")


# -- config ---------------------------------------------------------------------------------


def test_health_thresholds_are_validated_with_the_key_named():
    with pytest.raises(ConfigError) as err:
        parse_config({"health": {"stale_after_s": 0, "min_fps": 3}}, "c.toml")
    assert "c.toml: health.stale_after_s = 0: must be greater than 0" in err.value.lines
    assert "c.toml: health.min_fps = 3: unknown key" in err.value.lines
    cfg = parse_config({"health": {"temp_warning_c": 70, "no_viewer_warning_s": 0}})
    assert cfg.health.temp_warning_c == 70.0


# -- the command ----------------------------------------------------------------------------


def test_cli_exit_codes_and_line(tmp_path, capsys):
    p = tmp_path / "status.json"
    StatusWriter(p, probe=NoProbe()).write_dict(healthy())
    assert main(["health", "--status-file", str(p)]) == OK
    out = capsys.readouterr().out
    assert out.startswith("MONALISA OK - tracking, 29.8 fps")
    assert out.count("\n") == 1
    StatusWriter(p, probe=NoProbe(), clock=lambda: time.time() - 60).write_dict(healthy())
    assert main(["health", "--status-file", str(p)]) == CRITICAL
    assert capsys.readouterr().out.startswith("MONALISA CRITICAL - status is 60 s old")
    p.write_text("{")
    assert main(["health", "--status-file", str(p)]) == UNKNOWN


def test_cli_json(tmp_path, capsys):
    p = tmp_path / "status.json"
    StatusWriter(p, probe=NoProbe()).write_dict(healthy(loop_fps=3.0))
    assert main(["health", "--status-file", str(p), "--json"]) == WARNING
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"] == "WARNING" and doc["code"] == 1
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["fps"]["state"] == "WARNING" and checks["fps"]["value"] == 3.0
    assert checks["freshness"]["state"] == "OK"
    assert doc["status"]["camera"]["state"] == "running"
    assert "fps=3.0;10;;0" in doc["perfdata"]


def test_cli_verbose_lists_every_check(tmp_path, capsys):
    p = tmp_path / "status.json"
    StatusWriter(p, probe=NoProbe()).write_dict(healthy())
    main(["health", "--status-file", str(p), "-v"])
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[1] for line in lines[1:]] == [
        "freshness",
        "camera",
        "fps",
        "temperature",
        "viewers",
    ]


def test_cli_thresholds_and_status_file_from_config(tmp_path, capsys):
    p = tmp_path / "status.json"
    StatusWriter(p, probe=NoProbe()).write_dict(healthy(loop_fps=8.0))
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[service]\nstatus_file = "{p}"\n[health]\nmin_fps_warning = 5\n')
    assert main(["health", "--config", str(cfg)]) == OK
    capsys.readouterr()
    bad = tmp_path / "bad.toml"
    bad.write_text("[health]\nstale_after_s = -3\n")
    assert main(["health", "--config", str(bad), "--status-file", str(p)]) == UNKNOWN
    out = capsys.readouterr().out
    assert out.startswith(f"MONALISA UNKNOWN - {bad}: health.stale_after_s = -3")


@contextlib.contextmanager
def _searchable_by_others(path: Path) -> Iterator[None]:
    """Let `nobody` reach ``path``: add o+x to ancestors without it (a ``mktemp -d`` checkout
    is 0700), and put their modes back afterwards. Only root changes anything."""
    changed: list[tuple[Path, int]] = []
    try:
        if os.geteuid() == 0:
            for d in [path.resolve(), *path.resolve().parents]:
                mode = d.stat().st_mode & 0o7777
                if not mode & 0o001:
                    d.chmod(mode | 0o001)
                    changed.append((d, mode))
        yield
    finally:
        for d, mode in reversed(changed):
            d.chmod(mode)


def test_cli_as_a_process_needs_no_privilege():
    """The installed console script, run as `nobody` when we are root: it only reads the file."""
    d = Path(tempfile.mkdtemp(prefix="ml-health-", dir="/tmp"))
    try:
        d.chmod(0o755)
        p = d / "status.json"
        StatusWriter(p, probe=NoProbe()).write_dict(healthy())
        exe = Path(sys.executable).with_name("monalisa")
        cmd = [str(exe), "health", "--status-file", str(p)]
        if os.geteuid() == 0:
            cmd = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd]
        with _searchable_by_others(exe.parent):
            res = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, env={**os.environ, "LC_ALL": "C"}
            )
        assert res.returncode == OK, res.stdout + res.stderr
        assert res.stdout.startswith("MONALISA OK - ")
        assert "°C" in res.stdout
    finally:
        shutil.rmtree(d)


# -- detector load --------------------------------------------------------------------------


def _load(behind_for_s: float = 0.0) -> dict:
    return {"inferences_per_s": 33.5, "detector_ms_per_s": 212.0, "behind_for_s": behind_for_s}


def test_detector_load_is_reported_and_in_the_perfdata(tmp_path, capsys):
    r = verdict(tmp_path, load=_load())
    assert r.code == OK
    (load,) = [c for c in r.checks if c.name == "load"]
    assert load.message == "33.5 inferences/s, detector 212 ms/s"
    assert "inferences_per_s=33.5;;;0 detector_ms_per_s=212;;;0" in r.line
    main(["health", "--status-file", str(tmp_path / "status.json"), "-v"])
    assert any(
        " load " in f" {line} " and "212 ms/s" in line
        for line in capsys.readouterr().out.splitlines()
    )


@pytest.mark.parametrize(
    ("behind", "code"), [(0.0, OK), (59.0, OK), (60.0, WARNING), (600.0, WARNING)]
)
def test_a_loop_behind_the_camera_for_a_minute_is_a_warning(tmp_path, behind, code):
    r = verdict(tmp_path, load=_load(behind))
    assert r.code == code
    if code == WARNING:
        assert r.summary.startswith(
            f"the loop has kept under 90 % of the camera's 30.0 fps for {behind:.0f} s "
            "(33.5 inferences/s, detector 212 ms/s)"
        )


def test_a_status_without_load_has_no_load_check(tmp_path):
    assert "load" not in [c.name for c in verdict(tmp_path).checks]  # before the loop runs
