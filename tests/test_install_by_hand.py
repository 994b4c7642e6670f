"""The by-hand install (docs/technician/install.md), run as written in a fresh root.

The shell block is taken from that page itself, so the page cannot drift from what works.
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

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from appliance.frames import MANIFEST_NAME, parse_manifest
from tests.support.run import REPO
from tests.support.unit_run import (
    CLIP,
    CLIP_IN_ROOT,
    run_in,
    start_the_unit_and_check_health,
)
from tests.test_ansible import (
    _need_root_and_debootstrap,
    _prepare_offline_root,
    _pristine_tarball,
    copy_sources,
    release_root,
    venv_numpy,
)

SRC_IN_ROOT = "/root/monalisa-src"
# What every Raspberry Pi OS image has before the install page starts.
PI_OS_BASE = ["systemd", "sudo", "udev"]
# (what the page says, what runs here): each must occur exactly once in the block.
CHANGES = [
    (" python3-picamera2", ""),
    ("/path/to/this/clone", SRC_IN_ROOT),
    ("sudo systemctl daemon-reload\n", ""),
    ("sudo systemctl enable --now monalisa", "sudo systemctl enable monalisa"),
]


INSTALL_PAGE = REPO / "docs" / "technician" / "install.md"
"""The page whose "The install" section holds the block."""


def readme_install_block(page: str) -> str:
    """The first ``sh`` block of the install page's "The install" section."""
    section = page.split("\n## The install\n", 1)[1].split("\n## ", 1)[0]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, f"{INSTALL_PAGE}: no ```sh block under 'The install'"
    return match.group(1)


def runnable_here(block: str) -> str:
    for old, new in CHANGES:
        assert block.count(old) == 1, f"install block: {old!r} is not there exactly once"
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
    script = runnable_here(readme_install_block(INSTALL_PAGE.read_text("utf-8")))
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

    block = readme_install_block(INSTALL_PAGE.read_text("utf-8"))
    script = runnable_here(block)
    assert script.startswith(f"cd {SRC_IN_ROOT}\n")
    assert "python3-picamera2" not in script and "--now" not in script
    diff = list(difflib.ndiff(block.splitlines(), script.splitlines()[1:]))
    removed = [line[2:] for line in diff if line.startswith("- ")]
    # Exactly the page's lines that hold what CHANGES names, nothing else.
    assert removed == [
        line for line in block.splitlines() if any(old.strip() in line for old, _ in CHANGES)
    ]
    assert len(removed) == len(CHANGES)


@pytest.mark.system
def test_the_readme_block_runs_to_the_end(installed: Installed) -> None:
    r = installed.result
    assert r.returncode == 0, f"{r.stdout[-4000:]}\n{r.stderr[-4000:]}"
    out = r.stdout + r.stderr
    assert "/etc/monalisa/config.toml: OK" in out
    count = parse_manifest(REPO / "frames" / MANIFEST_NAME).count  # the grid: 660 today
    assert f"/usr/share/monalisa/frames: OK - {count} frames" in out


@pytest.mark.system
def test_the_service_user_has_the_camera_and_screen_groups(installed: Installed) -> None:
    r = installed.chroot("id", "-nG", "monalisa")
    assert r.returncode == 0 and set(r.stdout.split()) == {"monalisa", "video", "render"}
    shell = installed.chroot("getent", "passwd", "monalisa").stdout.strip().split(":")[-1]
    assert shell == "/usr/sbin/nologin"


@pytest.mark.system
def test_the_venv_keeps_apts_numpy(installed: Installed) -> None:
    apt = installed.chroot("python3", "-c", "import numpy; print(numpy.__version__)")
    version, where = venv_numpy(installed.chroot)
    assert version == apt.stdout.strip()
    assert where.startswith("/usr/lib/python3/dist-packages/")


@pytest.mark.system
def test_the_unit_is_installed_and_enabled(installed: Installed) -> None:
    unit = installed.root / "etc/systemd/system/monalisa.service"
    assert unit.read_bytes() == (REPO / "deploy/monalisa.service").read_bytes()
    assert installed.chroot("systemctl", "is-enabled", "monalisa").stdout.strip() == "enabled"
    default = os.readlink(installed.root / "etc/systemd/system/default.target")
    assert default.endswith("/multi-user.target")


@pytest.mark.system
def test_what_the_unit_starts_shows_the_portrait_and_health_says_ok(installed: Installed) -> None:
    start_the_unit_and_check_health(installed.root, CLIP_IN_ROOT, "/usr/share/monalisa/frames")
