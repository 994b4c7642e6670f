"""The README's by-hand install ("Running as a service"), run as written in a fresh root.

The shell block is taken from README.md itself, so the README cannot drift from what works.
It runs in a Debian bookworm minbase root (the same cached debootstrap tarball as
``test_ansible.py``) that first gets what every Raspberry Pi OS image already has: systemd,
sudo and udev (udev makes the ``render`` group). Four things in the block need a real Pi or a
booted system, and are changed, each asserted to occur exactly once:

* ``python3-picamera2`` is left out of the apt line: it is in Raspberry Pi's archive only;
* ``/path/to/this/clone`` is the copy of the sources in the root;
* ``systemctl daemon-reload`` and the ``--now`` of ``systemctl enable --now`` need systemd as
  PID 1; ``systemctl enable`` itself works offline and is kept.

What the unit would then start is started by hand: the installed unit's own ``ExecStart=``
line as its ``User=``/``Group=`` with their groups, ``/run/monalisa`` made as
``RuntimeDirectory=`` makes it, with a replay camera and no screen added (no camera, no
display here). ``monalisa health``, as a technician's unprivileged login runs it over SSH,
must then say OK.

Needs root (chroot); CI runs as root. About 1-2 minutes, mostly apt and pip.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.run import REPO
from tests.test_ansible import (
    _need_root_and_debootstrap,
    _prepare_offline_root,
    _pristine_tarball,
    copy_sources,
    release_root,
    venv_numpy,
)

CLIP = REPO / "tests" / "data" / "clips" / "demo"
SRC_IN_ROOT = "/root/monalisa-src"
CLIP_IN_ROOT = "/srv/replay-clip"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# What every Raspberry Pi OS image has before the README starts.
PI_OS_BASE = ["systemd", "sudo", "udev"]
# (what the README says, what runs here): each must occur exactly once in the block.
CHANGES = [
    (" python3-picamera2", ""),
    ("/path/to/this/clone", SRC_IN_ROOT),
    ("sudo systemctl daemon-reload\n", ""),
    ("sudo systemctl enable --now monalisa", "sudo systemctl enable monalisa"),
]


def readme_install_block(readme: str) -> str:
    """The first ``sh`` block of the README's "Running as a service" section."""
    section = readme.split("\n## Running as a service\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "README: no ```sh block under 'Running as a service'"
    return match.group(1)


def runnable_here(block: str) -> str:
    for old, new in CHANGES:
        assert block.count(old) == 1, f"README install block: {old!r} is not there exactly once"
        block = block.replace(old, new)
    return f"cd {SRC_IN_ROOT}\n{block}"


@dataclass
class Installed:
    root: Path
    script: str
    result: subprocess.CompletedProcess[str]

    def chroot(
        self, *cmd: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_in(self.root, *cmd, timeout=timeout, env=env)


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


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    _need_root_and_debootstrap()
    tarball = _pristine_tarball()
    root = tmp_path_factory.mktemp("install-by-hand") / "root"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    _prepare_offline_root(root)
    copy_sources(root / SRC_IN_ROOT.lstrip("/"))
    shutil.copytree(CLIP, root / CLIP_IN_ROOT.lstrip("/"))
    script = runnable_here(readme_install_block((REPO / "README.md").read_text("utf-8")))
    (root / "root/install.sh").write_text(script, encoding="utf-8")
    box = Installed(root, script, subprocess.CompletedProcess([], 0))
    try:
        env = {"DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PI_OS_BASE],
        ):
            r = box.chroot(*cmd, timeout=900, env=env)
            assert r.returncode == 0, f"{cmd}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
        box.result = box.chroot(
            "/bin/bash", "-euxo", "pipefail", "/root/install.sh", timeout=1500, env=env
        )
        yield box
    finally:
        release_root(root)
        shutil.rmtree(root, ignore_errors=True)


def test_the_readme_changes_only_what_needs_a_pi_or_a_booted_system() -> None:
    import difflib

    block = readme_install_block((REPO / "README.md").read_text("utf-8"))
    script = runnable_here(block)
    assert script.startswith(f"cd {SRC_IN_ROOT}\n")
    assert "python3-picamera2" not in script and "--now" not in script
    diff = list(difflib.ndiff(block.splitlines(), script.splitlines()[1:]))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    # Exactly the README's lines that hold what CHANGES names, nothing else.
    assert removed == [
        line for line in block.splitlines() if any(old.strip() in line for old, _ in CHANGES)
    ]
    assert len(removed) == len(CHANGES)


def test_the_readme_block_runs_to_the_end(installed: Installed) -> None:
    r = installed.result
    assert r.returncode == 0, f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    out = r.stdout + r.stderr
    assert "/etc/monalisa/config.toml: OK" in out
    assert "/usr/share/monalisa/frames: OK - 33 frames" in out


def test_the_service_user_has_the_camera_and_screen_groups(installed: Installed) -> None:
    r = installed.chroot("id", "-nG", "monalisa")
    assert r.returncode == 0 and set(r.stdout.split()) == {"monalisa", "video", "render"}
    shell = installed.chroot("getent", "passwd", "monalisa").stdout.strip().split(":")[-1]
    assert shell == "/usr/sbin/nologin"


def test_the_venv_keeps_apts_numpy(installed: Installed) -> None:
    apt = installed.chroot("python3", "-c", "import numpy; print(numpy.__version__)")
    version, where = venv_numpy(installed.chroot)
    assert version == apt.stdout.strip()
    assert where.startswith("/usr/lib/python3/dist-packages/")
    # apt's systemd binding is seen too (sd_notify under the unit).
    r = installed.chroot("/opt/monalisa/venv/bin/python", "-c", "import systemd.daemon")
    assert r.returncode == 0, r.stderr


def test_the_unit_is_installed_and_enabled(installed: Installed) -> None:
    unit = installed.root / "etc/systemd/system/monalisa.service"
    assert unit.read_bytes() == (REPO / "deploy/monalisa.service").read_bytes()
    assert installed.chroot("systemctl", "is-enabled", "monalisa").stdout.strip() == "enabled"
    default = os.readlink(installed.root / "etc/systemd/system/default.target")
    assert default.endswith("/multi-user.target")


def _unit_value(unit: str, key: str) -> str:
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
) -> str:
    """Once the running appliance ``proc`` tracks, ``health`` must say OK; then it must stop.

    Waits until the status says tracking after 15 frames, without errors, runs ``health``
    (which must exit 0 with ``MONALISA OK - tracking``), then sends SIGTERM: the appliance
    must exit 0 saying it is stopping.

    Args:
        proc: The appliance, its output piped (shown if it ended early).
        status_path: Its status file, as seen from here.
        frames_dir: The frame set (33 frames) the status must name, as the appliance sees it.
        wait_s: How long to wait for tracking at most, seconds.
        health: Runs ``monalisa health`` where the appliance runs.

    Returns:
        What ``monalisa health`` printed.
    """
    try:
        deadline = time.monotonic() + wait_s
        status: dict[str, object] = {}
        while time.monotonic() < deadline and proc.poll() is None:
            with contextlib.suppress(OSError, ValueError):
                status = json.loads(status_path.read_text("utf-8"))
                if status.get("gaze_state") == "tracking" and int(str(status["frames"])) >= 15:
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
) -> str:
    """Start the installed unit's ``ExecStart=`` in ``root`` as its user; health must say OK.

    ``/run/monalisa`` is made as ``RuntimeDirectory=`` makes it, a replay camera and the
    headless display are added (no camera, no screen here). Once the status file says
    tracking, ``monalisa health`` runs as a technician's login (not the service user, no
    groups) and must exit 0. The appliance must then stop cleanly on SIGTERM.

    Args:
        root: The root file system the unit is installed in.
        clip_in_root: The replay clip's folder, as seen inside ``root``.
        frames_dir: The frame set the status file must name, as seen inside ``root``.
        duration_s: How long the appliance runs at most, seconds.
        wait_s: How long to wait for it to track, seconds (longer under emulation).
        health_config: A config file (inside ``root``) for ``monalisa health``; None = its
            default.
        extra_args: More ``monalisa run`` arguments (e.g. the replay's pacing).

    Returns:
        What ``monalisa health`` printed.
    """
    unit = (root / "etc/systemd/system/monalisa.service").read_text("utf-8")
    user, group = _unit_value(unit, "User"), _unit_value(unit, "Group")
    run_dir = f"/run/{_unit_value(unit, 'RuntimeDirectory')}"  # as RuntimeDirectory= makes it
    runtime = root / run_dir.lstrip("/")
    runtime.mkdir(parents=True, exist_ok=True)
    assert run_in(root, "chown", f"{user}:{group}", run_dir).returncode == 0
    command = shlex.split(_unit_value(unit, "ExecStart"))
    extra = ["--camera", f"replay:{clip_in_root}", "--display", "headless", *extra_args]
    as_user = ["setpriv", f"--reuid={user}", f"--regid={group}", "--init-groups"]
    proc = subprocess.Popen(
        ["chroot", str(root), *as_user, *command, *extra, "--duration", f"{duration_s:g}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": PATH, "LANG": "C.UTF-8"},
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
    )


def test_what_the_unit_starts_shows_the_portrait_and_health_says_ok(installed: Installed) -> None:
    start_the_unit_and_check_health(installed.root, CLIP_IN_ROOT, "/usr/share/monalisa/frames")
