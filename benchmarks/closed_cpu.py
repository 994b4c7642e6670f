"""CPU used by the real appliance while the gallery is closed, in % of one core.

Starts ``monalisa run`` as its own process (as systemd does: replay camera, BlazeFace, the
default frame set, headless display, status file) twice, with a config whose ``[schedule]``
makes it closed now (today and tomorrow are closed dates), and, as the peer in the same run,
with no schedule (open: the camera replays a looping clip in real time and the detector runs).
Each process is left ``--settle`` seconds to start, then its user + system CPU time
(``/proc/PID/stat`` utime + stime) is read at the start and end of a ``--seconds`` window.

Target (issue 16): closed ≤ 1 % of a core.

    .venv/bin/python benchmarks/closed_cpu.py                 # 60 s closed, 20 s open
    .venv/bin/python benchmarks/closed_cpu.py --seconds 10 --open-seconds 5   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # tests.support
TARGET_PCT = 1.0

from tests.support.run import MONALISA, app_env, write_astronaut_clip  # noqa: E402


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def closed_config(workdir: Path) -> Path:
    """A config closed all of today and tomorrow (UTC), screen black."""
    today = datetime.now(UTC).date()
    path = workdir / "closed.toml"
    path.write_text(
        "[schedule]\n"
        'timezone = "UTC"\n'
        'open = ["daily 00:00-24:00"]\n'
        f'closed = ["{today}..{today + timedelta(days=1)}"]\n'
        'screen = "black"\n',
        encoding="utf-8",
    )
    return path


def measure(config: Path | None, clip: Path, workdir: Path, settle: float, seconds: float) -> dict:
    """Run the appliance, wait ``settle`` s, measure CPU over ``seconds`` s, stop it.

    Returns:
        ``cpu_pct`` (% of one core over the window), ``state`` and ``camera`` from the
        status file at the end of the window.
    """
    status_file = workdir / "status.json"
    status_file.unlink(missing_ok=True)
    cmd = [*MONALISA, "run", "--camera", f"replay:{clip}", "--display", "headless"]
    cmd += ["--status-file", str(status_file)]
    if config is not None:
        cmd += ["--config", str(config)]
    env = app_env()
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        time.sleep(settle)
        if proc.poll() is not None:
            raise SystemExit(f"monalisa run exited {proc.returncode} during start-up")
        c0, t0 = cpu_s(proc.pid), time.monotonic()
        time.sleep(seconds)
        c1, t1 = cpu_s(proc.pid), time.monotonic()
        status = json.loads(status_file.read_text(encoding="utf-8"))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)
    return {
        "cpu_pct": 100.0 * (c1 - c0) / (t1 - t0),
        "state": status.get("gaze_state"),
        "camera": status.get("camera", {}).get("state"),
        "text": (status.get("schedule") or {}).get("text", "-"),
    }


def main() -> int:
    """Measure and print; exit 1 if the closed figure misses the target."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="closed window, s")
    ap.add_argument("--open-seconds", type=float, default=20.0, help="open window (peer), s")
    ap.add_argument("--settle", type=float, default=8.0, help="start-up allowance, s")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="monalisa-closed-") as tmp:
        workdir = Path(tmp)
        clip = write_astronaut_clip(workdir / "clip", n=30)
        closed = measure(closed_config(workdir), clip, workdir, args.settle, args.seconds)
        opened = measure(None, clip, workdir, args.settle, args.open_seconds)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'run':8} {'window':>8} {'CPU % of a core':>16}  state / camera")
    print(
        f"{'closed':8} {args.seconds:>7.0f}s {closed['cpu_pct']:>16.2f}  "
        f"{closed['state']} / {closed['camera']} ({closed['text']})"
    )
    print(
        f"{'open':8} {args.open_seconds:>7.0f}s {opened['cpu_pct']:>16.2f}  "
        f"{opened['state']} / {opened['camera']}"
    )
    ratio = closed["cpu_pct"] / opened["cpu_pct"] if opened["cpu_pct"] > 0 else float("nan")
    ok = closed["cpu_pct"] <= TARGET_PCT and closed["state"] == "closed"
    verdict = "met" if ok else "MISSED"
    print(f"closed / open = {ratio:.3f}; target closed <= {TARGET_PCT:g} %: {verdict}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
