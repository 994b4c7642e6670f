"""Run what an installed systemd unit starts, inside a root file system, and ask health.

Shared by the by-hand install (``test_install_by_hand.py``), the role's deploy
(``test_ansible.py``) and the arm64 roots (``test_arm64.py``): the unit's own ``ExecStart=``
line as its ``User=``/``Group=``, with a replay camera and no screen (none here), then
``monalisa health`` as a technician's unprivileged login.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from appliance.runner import DEMO_CLIP

#: The bundled replay clip (package data), and where tests copy it inside a root.
CLIP = DEMO_CLIP
CLIP_IN_ROOT = "/srv/replay-clip"
#: A login's PATH inside a root.
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def run_in(
    root: Path, *cmd: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in the root file system ``root`` as root, with a login's basic environment."""
    return subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8", **(env or {})},
    )


def unit_value(unit: str, key: str) -> str:
    values: list[str] = re.findall(rf"^{key}=(.*)$", unit, re.M)
    assert len(values) == 1, f"monalisa.service: {key}= is set {len(values)} times"
    return values[0].strip()


# A technician's login: not the service user, no groups.
AS_A_LOGIN = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


def check_health_while_tracking(
    proc: subprocess.Popen[str],
    status_path: Path,
    frames_dir: str,
    wait_s: float,
    health: Callable[[], subprocess.CompletedProcess[str]],
    until: Callable[[], bool] | None = None,
) -> str:
    """Once the running appliance ``proc`` tracks, ``health`` must say OK; then it must stop.

    Waits until the status says tracking after 15 frames, without errors (and ``until`` says
    True, when given), runs ``health``
    (which must exit 0 with ``MONALISA OK - tracking``), then sends SIGTERM: the appliance
    must exit 0 saying it is stopping.

    Args:
        proc: The appliance, its output piped (shown if it ended early).
        status_path: Its status file, as seen from here.
        frames_dir: The frame set (33 gazes) the status must name, as the appliance sees it.
        wait_s: How long to wait for tracking at most, seconds.
        health: Runs ``monalisa health`` where the appliance runs.
        until: One more condition to wait for before stopping it (e.g. a file it writes).

    Returns:
        What ``monalisa health`` printed.
    """
    try:
        deadline = time.monotonic() + wait_s
        status: dict[str, object] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                status = json.loads(status_path.read_text("utf-8"))
                tracking = status.get("gaze_state") == "tracking"
                if tracking and int(str(status["frames"])) >= 15 and (until is None or until()):
                    break
            time.sleep(0.5)
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        assert status.get("gaze_state") == "tracking", status
        assert status["frames_dir"] == frames_dir
        assert status["frame_count"] == 33 and status["errors"] == 0
        said = health()
        assert said.returncode == 0, said.stdout + said.stderr
        assert said.stdout.startswith("MONALISA OK - tracking")
    finally:
        proc.terminate()
        out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 0, out[-3000:]
    assert "stopping" in out
    return said.stdout


def start_the_unit_and_check_health(
    root: Path,
    clip_in_root: str,
    frames_dir: str,
    *,
    duration_s: float = 30,
    wait_s: float = 60,
    health_config: str | None = None,
    extra_args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    until: Callable[[], bool] | None = None,
) -> str:
    """Start the installed unit's ``ExecStart=`` in ``root`` as its user; health must say OK.

    ``/run/monalisa`` is made as ``RuntimeDirectory=`` makes it, ``/var/cache/monalisa`` as
    ``CacheDirectory=`` does (owned by the user, mode 0700, named in ``$CACHE_DIRECTORY``),
    a replay camera and the headless display are added (no camera, no screen here). Once the
    status file says tracking, ``monalisa health`` runs as a technician's login (not the
    service user, no groups) and must exit 0. The appliance must then stop cleanly on SIGTERM.

    Args:
        root: The root file system the unit is installed in.
        clip_in_root: The replay clip's folder, as seen inside ``root``.
        frames_dir: The frame set the status file must name, as seen inside ``root``.
        duration_s: How long the appliance runs at most, seconds.
        wait_s: How long to wait for it to track, seconds (longer under emulation).
        health_config: A config file (inside ``root``) for ``monalisa health``; None = its
            default.
        extra_args: More ``monalisa run`` arguments (e.g. the replay's pacing).
        env: More environment (e.g. ``NOTIFY_SOCKET``, a path inside ``root``).
        until: One more condition to wait for before stopping it (e.g. the cache file).

    Returns:
        What ``monalisa health`` printed.
    """
    unit = (root / "etc/systemd/system/monalisa.service").read_text("utf-8")
    user, group = unit_value(unit, "User"), unit_value(unit, "Group")
    run_dir = f"/run/{unit_value(unit, 'RuntimeDirectory')}"  # as RuntimeDirectory= makes it
    runtime = root / run_dir.lstrip("/")
    runtime.mkdir(parents=True, exist_ok=True)
    assert run_in(root, "chown", f"{user}:{group}", run_dir).returncode == 0
    cache_dir = f"/var/cache/{unit_value(unit, 'CacheDirectory')}"  # as CacheDirectory= does
    (root / cache_dir.lstrip("/")).mkdir(parents=True, exist_ok=True)
    assert run_in(root, "chown", f"{user}:{group}", cache_dir).returncode == 0
    assert run_in(root, "chmod", unit_value(unit, "CacheDirectoryMode"), cache_dir).returncode == 0
    command = shlex.split(unit_value(unit, "ExecStart"))
    extra = ["--camera", f"replay:{clip_in_root}", "--display", "headless", *extra_args]
    as_user = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups"]
    proc = subprocess.Popen(
        ["chroot", str(root), *as_user, *command, *extra, "--duration", f"{duration_s:g}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": PATH, "LANG": "C.UTF-8", "CACHE_DIRECTORY": cache_dir, **(env or {})},
    )
    health_cmd = ["monalisa", "health"]
    if health_config:
        health_cmd += ["--config", health_config]
    return check_health_while_tracking(
        proc,
        runtime / "status.json",
        frames_dir,
        wait_s,
        lambda: run_in(root, *AS_A_LOGIN, *health_cmd),
        until,
    )
