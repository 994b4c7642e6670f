"""The Ansible playbooks: lint, then a real deploy into a debootstrapped Debian root.

``ansible/deploy.yml`` runs for real, over the ``community.general.chroot`` connection,
against a Debian bookworm root made with ``debootstrap --variant=minbase``: the same way an
SD-card image is prepared offline (``monalisa_is_pi=false``, ``monalisa_start_service=false``:
everything installed and enabled, nothing started). First a ``--check`` pass on the pristine
root (it must run clean and install nothing of the appliance), then it runs twice and the
second run must change nothing; then the installed appliance is checked from inside the root
(unit enabled, config valid, the venv's ``monalisa`` works, the user, sshd's hardened
configuration), check mode again, the config validation, ``health.yml`` and
``update-frames.yml`` (a set pushed again under the live set's name, a broken set, a
museum-size set built by the builder: only its version 2 files copied, and the unit's
``ExecStart=`` READY within ``TimeoutStartSec=`` with it, its cache in ``CacheDirectory=``).

Needs root (chroot) and ``debootstrap`` (installed here with apt if missing), Debian's mirror
and PyPI. Without root the deploy tests are skipped, except under CI (``CI`` set), where they
fail: CI runs as root, and a skip there would hide a broken deploy. The pristine root is
cached as a tarball in ``$MONALISA_TEST_CACHE`` (default
``/tmp/monalisa-test-cache``), so a rerun skips the ~30-100 s debootstrap; the first run
builds it from scratch.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from skimage import data

from appliance.framebuild.output import CONTACT_SHEET
from appliance.frames import BASE_NAME, MANIFEST_NAME, OLD_PREVIEW_NAME, PATCH_DIR, PREVIEW_NAME
from tests.data.paintinglike import museum_painting
from tests.support.run import MONALISA, REPO, app_env, install_debs
from tests.support.unit_run import (
    CLIP,
    CLIP_IN_ROOT,
    start_the_unit_and_check_health,
    unit_value,
)
from tests.test_resilience import Notify

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(1800)]

ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
HOST = "image-root"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
CACHE = Path(os.environ.get("MONALISA_TEST_CACHE", "/tmp/monalisa-test-cache"))
# What the playbooks install from the repository: a snapshot of these is deployed, so edits
# made to the working tree while the test runs cannot change the second run's input.
SOURCES = ["appliance", "pyproject.toml", "README.md", "deploy", "models", "frames", "docs"]
RESTART_HANDLER = "RUNNING HANDLER [monalisa : Restart monalisa]"
# What the monalisa role installs; none of it may exist after a check-mode pass.
APPLIANCE_PATHS = [
    "opt/monalisa",
    "etc/monalisa",
    "etc/systemd/system/monalisa.service",
    "usr/local/bin/monalisa",
]
RECAP = re.compile(
    rf"^{re.escape(HOST)}\s*:\s*ok=(?P<ok>\d+)\s+changed=(?P<changed>\d+)\s+"
    r"unreachable=(?P<unreachable>\d+)\s+failed=(?P<failed>\d+).*$",
    re.MULTILINE,
)


def _tool(name: str) -> str:
    for candidate in (BIN / name, shutil.which(name)):
        if candidate and Path(candidate).exists():
            return str(candidate)
    pytest.fail(f"{name} is not installed: pip install -e '.[dev]' (it is in the dev extra)")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["ANSIBLE_CONFIG"] = str(ANSIBLE_DIR / "ansible.cfg")
    env["ANSIBLE_ROLES_PATH"] = str(ANSIBLE_DIR / "roles")  # for plays written by the tests
    env["ANSIBLE_NOCOLOR"] = "1"
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_LOCAL_TEMP"] = "/tmp/.ansible-local"
    env["PY_COLORS"] = "0"
    return env


def _run(cmd: list[str], timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        cmd, cwd=ANSIBLE_DIR, env=_env(), capture_output=True, text=True, timeout=timeout
    )


def _recap(output: str) -> dict[str, int]:
    m = RECAP.search(output)
    assert m, f"no PLAY RECAP line for {HOST} in:\n{output[-3000:]}"
    return {k: int(v) for k, v in m.groupdict().items()}


def _recap_line(output: str) -> str:
    m = RECAP.search(output)
    return m.group(0).strip() if m else "(no recap)"


# --------------------------------------------------------------------------------------------
# Lint


def test_ansible_lint_production_profile() -> None:
    r = _run([_tool("ansible-lint"), "--offline", "--profile", "production", "--nocolor"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Profile 'production' was required, and it passed" in r.stdout + r.stderr


def test_yamllint() -> None:
    r = _run([_tool("yamllint"), "--strict", "."])
    assert r.returncode == 0, r.stdout + r.stderr


def test_no_lint_skips() -> None:
    """Lint is not quieted: no skip list, no noqa, no per-task lint tags."""
    for path in ANSIBLE_DIR.rglob("*"):
        if path.is_file() and path.suffix in {".yml", ".yaml", ""}:
            text = path.read_text(encoding="utf-8", errors="replace")
            assert "skip_list" not in text, path
            assert "noqa" not in text, path
            assert "skip_ansible_lint" not in text, path


def test_the_role_copies_the_files_the_appliance_reads_of_a_v2_set() -> None:
    """The role's list of a version 2 set's files is the appliance's names, and no others."""
    role_vars = (ANSIBLE_DIR / "roles/monalisa/vars/main.yml").read_text(encoding="utf-8")
    found = re.search(r"^monalisa_frames_v2_files: >-\n  (\S+)$", role_vars, re.M)
    assert found, role_vars
    keep = re.compile(found.group(1))
    names = (MANIFEST_NAME, BASE_NAME, PREVIEW_NAME, OLD_PREVIEW_NAME, CONTACT_SHEET)
    for name in (*names, f"{PATCH_DIR}/x_07.png", f"{PATCH_DIR}/x_07.webp"):
        assert keep.fullmatch(name), name
    for stray in ("frame_00.png", "export/frame_00.png", "frames.json", f"{PATCH_DIR}/a/b.png"):
        assert not keep.fullmatch(stray), stray


def test_role_default_finder_mode_is_the_appliances() -> None:
    """The role does not override the appliance's own default (``band``, for gallery rooms)."""
    from appliance.config import FinderConfig

    defaults = (ANSIBLE_DIR / "roles/monalisa/defaults/main.yml").read_text(encoding="utf-8")
    m = re.search(r"^monalisa_finder_mode:\s*(\S+)\s*$", defaults, re.MULTILINE)
    assert m, "monalisa_finder_mode is missing from roles/monalisa/defaults/main.yml"
    assert m.group(1) == "null"  # unset: the appliance's own
    assert FinderConfig().mode == "band"


RENDER_PLAY = """
- name: Write each host's configuration as the role does, into a folder here
  hosts: all
  gather_facts: false
  tasks:
    - name: The role's task
      ansible.builtin.include_role:
        name: monalisa
        tasks_from: render.yml
    - name: Keep what it wrote
      ansible.builtin.copy:
        content: "{{{{ monalisa_config_toml.stdout }}}}\\n"
        dest: "{out}/{{{{ inventory_hostname }}}}.toml"
        mode: "0644"
      delegate_to: localhost
"""

# Each host's variables, as a technician writes them in host_vars/ (none: the defaults).
RENDER_HOSTS = {
    "plain": "",
    "hours": (
        'monalisa_schedule_open: ["Tue-Sun 10:00-18:00", "Thu 18:00-21:00"]\n'
        'monalisa_schedule_closed: ["2026-12-25"]\n'
        "monalisa_schedule_timezone: Europe/Paris\n"
        "monalisa_schedule_screen: off\n"  # bare: YAML's false
    ),
    "own-model": "monalisa_detector_model: room-tuned.tflite\n",
}


def test_the_role_writes_only_what_the_inventory_sets(tmp_path: Path) -> None:
    """No appliance variable: `monalisa config show` says the built-in defaults, except where
    the role puts the models and the frames; set ones are written, as the config reads them."""
    from appliance.config import Config, dump_config

    (tmp_path / "host_vars").mkdir()
    for host, text in RENDER_HOSTS.items():
        (tmp_path / "host_vars" / f"{host}.yml").write_text(f"---\n{text}", encoding="utf-8")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        "".join(f"{h} ansible_connection=local\n" for h in RENDER_HOSTS), encoding="utf-8"
    )
    play = tmp_path / "play.yml"
    play.write_text(RENDER_PLAY.format(out=tmp_path))
    r = _run(
        [
            _tool("ansible-playbook"),
            "-i",
            str(inventory),
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"monalisa_source_dir={REPO}",
            str(play),
        ],
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    models = {"model_dir": "/opt/monalisa/models"}
    frames = {"directory": "/opt/monalisa/frames"}
    plain = tomllib.loads((tmp_path / "plain.toml").read_text())
    assert plain == {"detector": models, "frames": frames}
    show = subprocess.run(
        [str(BIN / "monalisa"), "config", "show", str(tmp_path / "plain.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert show.returncode == 0, show.stderr
    assert show.stdout == dump_config(Config(detector=models, frames=frames))
    assert tomllib.loads((tmp_path / "hours.toml").read_text())["schedule"] == {
        "open": ["Tue-Sun 10:00-18:00", "Thu 18:00-21:00"],
        "closed": ["2026-12-25"],
        "timezone": "Europe/Paris",
        "screen": "off",
    }
    own = tomllib.loads((tmp_path / "own-model.toml").read_text())["detector"]
    assert own == {"model": "/opt/monalisa/models/room-tuned.tflite", **models}
    for host in ("plain", "hours"):
        check = subprocess.run(
            [str(BIN / "monalisa"), "config", "check", str(tmp_path / f"{host}.toml")],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert check.returncode == 0, check.stderr


# --------------------------------------------------------------------------------------------
# A real deploy into a debootstrapped root


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def _need_root_and_debootstrap() -> None:
    if os.geteuid() != 0:
        if _in_ci():
            pytest.fail("chroot deploy needs root, and CI (CI is set) must run it as root")
        pytest.skip("chroot deploy needs root (CI runs as root)")
    install_debs("debootstrap")


def _pristine_tarball(suite: str = SUITE, arch: str | None = None) -> Path:
    """A Debian minbase root as a tarball, built once and cached between sessions.

    Args:
        suite: The Debian release (``bookworm``, ``trixie``).
        arch: A Debian architecture (``arm64``); None = this machine's. A foreign one needs
            qemu registered with binfmt_misc (debootstrap's second stage runs in the root).
    """
    host_arch = subprocess.run(
        ["dpkg", "--print-architecture"], capture_output=True, text=True, check=True
    ).stdout.strip()
    arch = arch or host_arch
    tarball = CACHE / f"debootstrap-{suite}-minbase-{arch}.tar"
    if tarball.exists():
        return tarball
    CACHE.mkdir(parents=True, exist_ok=True)
    build = CACHE / f"build-{os.getpid()}"
    try:
        r = subprocess.run(
            ["debootstrap", "--variant=minbase", f"--arch={arch}", suite, str(build), MIRROR],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        assert r.returncode == 0, f"debootstrap failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
        partial = tarball.with_suffix(f".{os.getpid()}.partial")
        subprocess.run(["tar", "-C", str(build), "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return tarball


def _prepare_offline_root(root: Path) -> None:
    """What anyone preparing an image in a chroot does first (see docs/technician/ansible.md).

    policy-rc.d keeps package scripts from starting daemons (sshd) in the chroot, and the
    build machine's CA certificates let pip inside the root reach PyPI through the same
    HTTPS proxy the host uses (on a machine without one they are just Debian's).
    """
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# no daemons in an offline image\nexit 101\n")
    policy.chmod(0o755)
    local_ca = Path("/usr/local/share/ca-certificates")
    if local_ca.is_dir():
        dest = root / "usr/local/share/ca-certificates"
        dest.mkdir(parents=True, exist_ok=True)
        for crt in local_ca.glob("*.crt"):
            shutil.copy2(crt, dest / crt.name)
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        (root / "etc/ssl/certs").mkdir(parents=True, exist_ok=True)
        shutil.copy2(bundle, root / "etc/ssl/certs/ca-certificates.crt")


def _processes_in(root: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if Path(os.readlink(proc / "root")).resolve() == root.resolve():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


def _mounts_under(root: Path) -> list[str]:
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mounts", encoding="utf-8") as f:
        points = [line.split()[1] for line in f]
    return [p for p in points if p.startswith(prefix)]


def copy_sources(dest: Path) -> Path:
    """Copy what a deploy needs of this checkout (``SOURCES``) into ``dest`` (made here)."""
    dest.mkdir(parents=True)
    for name in SOURCES:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / name)
    return dest


def release_root(root: Path) -> None:
    """Kill anything still running in ``root`` and unmount what is mounted under it."""
    for pid in _processes_in(root):  # nothing should run there (policy-rc.d); be sure
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    for point in sorted(_mounts_under(root), reverse=True):
        subprocess.run(["umount", "-l", point], check=False)


def in_root(root: Path, *cmd: str) -> subprocess.CompletedProcess:
    """Run ``cmd`` chrooted into ``root`` (a plain PATH, output captured)."""
    return subprocess.run(
        ["chroot", str(root), *cmd],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def deployed_sshd(root: Path) -> dict[str, str]:
    """sshd's effective settings in ``root`` (``sshd -T``; {} if sshd is not there or fails)."""
    if not (root / "usr/sbin/sshd").exists():
        return {}
    r = in_root(root, "/usr/sbin/sshd", "-T")
    if r.returncode != 0:
        return {}
    return dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)


@dataclass
class FailedDeploy:
    """A first deploy that failed in the monalisa role: the run, the appliance's paths it left,
    and sshd's effective settings after it."""

    run: subprocess.CompletedProcess
    left: list[str]
    sshd: dict[str, str]


@dataclass
class Deployment:
    root: Path
    source: Path
    inventory: Path
    fresh_check: subprocess.CompletedProcess
    fresh_check_left: list[str]
    first: subprocess.CompletedProcess
    second: subprocess.CompletedProcess
    seconds: dict[str, float]
    refusals: dict[str, Refusal]
    failed: FailedDeploy

    def chroot(self, *cmd: str) -> subprocess.CompletedProcess:
        return in_root(self.root, *cmd)


# The test host's camera: 2.1 m up, tilted 6° down (host_vars).
MOUNT_HEIGHT_M, MOUNT_TILT_DEG = 2.1, 6


def _playbook_cmd(inventory: Path, source: Path, *args: str, is_pi: bool = False) -> list[str]:
    """An offline image's deploy (nothing started); Pi-only tasks only when ``is_pi``."""
    return [
        _tool("ansible-playbook"),
        "-i",
        str(inventory),
        "-e",
        f"monalisa_is_pi={str(is_pi).lower()}",
        "-e",
        "monalisa_start_service=false",
        "-e",
        f"monalisa_source_dir={source}",
        *args,
    ]


def write_inventory(work: Path, root: Path, mistake: str = "") -> Path:
    """The inventory of one chroot host at ``root``, and its host_vars, written in ``work``.

    Args:
        work: The folder (``inventory.ini``, ``host_vars/``); written again if there.
        root: The chroot.
        mistake: A line added to the host_vars (a technician's mistake); "" = none.
    """
    inventory = work / "inventory.ini"
    inventory.write_text(
        f"[gallery]\n{HOST} ansible_connection=community.general.chroot ansible_host={root}\n",
        encoding="utf-8",
    )
    # Where this host's camera hangs, as a technician writes it in host_vars/.
    (work / "host_vars").mkdir(exist_ok=True)
    (work / "host_vars" / f"{HOST}.yml").write_text(
        f"---\nmonalisa_camera_mount_height_m: {MOUNT_HEIGHT_M}\n"
        f"monalisa_camera_tilt_deg: {MOUNT_TILT_DEG}\n{mistake}",
        encoding="utf-8",
    )
    return inventory


# A technician's mistakes in host_vars, each with the one line the deploy must stop with.
MISTAKES = {
    "misspelt": (
        "monalisa_camera_widht: 640\n",
        f"{HOST}: monalisa_camera_widht: no role has this variable "
        "(did you mean monalisa_camera_width?)",
    ),
    "text in a number": (
        "monalisa_camera_offset_y_mm: 12cm\n",
        f"{HOST}: monalisa_camera_offset_y_mm = '12cm': not a number",
    ),
    "out of range": (
        "monalisa_camera_fps: 500\n",
        f"{HOST}: monalisa_camera_fps = 500: must be at most 120",
    ),
    "unknown choice": (
        "monalisa_display_rotation: 90°\n",
        f"{HOST}: monalisa_display_rotation = '90°': must be 0, 90, 180 or 270",
    ),
}


@dataclass
class Refusal:
    """A run with a mistake: the run, what it changed in the root (paths, none wanted), and
    the one line it must stop with."""

    run: subprocess.CompletedProcess
    changed: list[str]
    line: str


def refuse_mistakes(work: Path, root: Path, source: Path) -> dict[str, Refusal]:
    """Deploy (and check) each of :data:`MISTAKES` into ``root``, and push the default frame
    set with ``update-frames.yml`` (and check) with the misspelt one; host_vars fixed after."""
    marker = work / "before-the-mistakes"
    runs: list[tuple[str, tuple[str, ...], str, str]] = [
        (name, ("deploy.yml",), host_vars, line) for name, (host_vars, line) in MISTAKES.items()
    ]
    frames = ("update-frames.yml", "-e", f"frames={source / 'frames'}")
    runs.append(("update-frames misspelt", frames, *MISTAKES["misspelt"]))
    refusals = {}
    for name, playbook, host_vars, line in runs:
        inventory = write_inventory(work, root, host_vars)
        for mode in ((), ("--check",)):
            marker.touch()
            r = _run(_playbook_cmd(inventory, source, *playbook, *mode), timeout=600)
            found = subprocess.run(
                ["find", str(root), "-cnewer", str(marker)], capture_output=True, text=True
            )
            refusals[" ".join([name, *mode])] = Refusal(r, found.stdout.splitlines(), line)
    write_inventory(work, root)  # the technician fixes the host_vars
    return refusals


# One deploy.yml run at most, seconds: under qemu on a busy 2-core machine a first arm64
# deploy took 42 min (bookworm) and more than 60 (trixie, py_compile and pip under emulation).
DEPLOY_TIMEOUT_S = 3 * 3600


def deploy_twice(
    inventory: Path, source: Path, seconds: dict[str, float], *, is_pi: bool = False
) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Run ``deploy.yml`` twice (the first must succeed); times go into ``seconds``."""
    runs = []
    for name in ("first deploy", "second deploy"):
        t0 = time.monotonic()
        runs.append(
            _run(
                _playbook_cmd(inventory, source, "deploy.yml", is_pi=is_pi),
                timeout=DEPLOY_TIMEOUT_S,
            )
        )
        seconds[name] = time.monotonic() - t0
        assert runs[0].returncode == 0, runs[0].stdout[-6000:] + runs[0].stderr[-3000:]
    print(f"\nfirst run: {_recap_line(runs[0].stdout)}\nsecond run: {_recap_line(runs[1].stdout)}")
    return runs[0], runs[1]


def make_boot_partition(root: Path) -> Path:
    """A Raspberry Pi OS-like boot partition at ``root``/boot/firmware (what the kiosk edits)."""
    boot = root / "boot/firmware"
    boot.mkdir(parents=True, exist_ok=True)
    (boot / "cmdline.txt").write_text(
        "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootfstype=ext4 "
        "fsck.repair=yes rootwait fbcon=rotate:3\n"
    )
    (boot / "config.txt").write_text("dtparam=audio=on\ncamera_auto_detect=1\n[all]\n")
    return boot


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    _need_root_and_debootstrap()
    _tool("ansible-playbook")
    seconds: dict[str, float] = {}
    t0 = time.monotonic()
    tarball = _pristine_tarball()
    seconds["debootstrap (or cache)"] = time.monotonic() - t0

    work = tmp_path_factory.mktemp("ansible-deploy")
    root = work / "root"
    root.mkdir()
    t0 = time.monotonic()
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    seconds["unpack"] = time.monotonic() - t0
    _prepare_offline_root(root)

    source = copy_sources(work / "src")
    inventory = write_inventory(work, root)
    try:
        # A technician's mistakes in host_vars, on the pristine root: each must stop the
        # deploy (and check mode) before it changes anything.
        t0 = time.monotonic()
        refusals = refuse_mistakes(work, root, source)
        seconds[f"{len(refusals)} refused runs"] = time.monotonic() - t0
        # Check mode on the pristine root first ("--check --diff", as the Ansible guide says).
        t0 = time.monotonic()
        fresh_check = _run(
            _playbook_cmd(inventory, source, "deploy.yml", "--check", "--diff"), timeout=1500
        )
        seconds["check mode (fresh)"] = time.monotonic() - t0
        fresh_check_left = [p for p in APPLIANCE_PATHS if os.path.lexists(root / p)]
        # A first deploy that fails in the monalisa role (an apt package that does not exist):
        # the hardening must still be applied.
        t0 = time.monotonic()
        failed = _run(
            _playbook_cmd(
                inventory,
                source,
                "deploy.yml",
                "-e",
                json.dumps({"monalisa_packages": ["monalisa-no-such-package"]}),
            ),
            timeout=DEPLOY_TIMEOUT_S,
        )
        seconds["failed deploy"] = time.monotonic() - t0
        failed_left = [p for p in APPLIANCE_PATHS if os.path.lexists(root / p)]
        sshd = deployed_sshd(root)
        first, second = deploy_twice(inventory, source, seconds)
        print("timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()))
        yield Deployment(
            root,
            source,
            inventory,
            fresh_check,
            fresh_check_left,
            first,
            second,
            seconds,
            refusals,
            FailedDeploy(failed, failed_left, sshd),
        )
    finally:
        release_root(root)
        assert not _mounts_under(root)
        shutil.rmtree(root, ignore_errors=True)


def test_check_mode_on_the_fresh_root_runs_clean_and_installs_nothing(
    deployed: Deployment,
) -> None:
    r = deployed.fresh_check
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    recap = _recap(r.stdout)
    assert recap["failed"] == 0 and recap["unreachable"] == 0, _recap_line(r.stdout)
    assert recap["changed"] > 10, _recap_line(r.stdout)  # it says what the deploy would do
    assert deployed.fresh_check_left == [], "check mode installed parts of the appliance"


def test_mistakes_in_host_vars_stop_the_deploy_before_any_change(deployed: Deployment) -> None:
    """Misspelt, text in a number, out of range, unknown choice: deploy.yml and --check stop
    on the pristine root with one line naming host, variable and value; nothing changed. So
    does update-frames.yml (and --check) with the misspelt variable and a good frame set."""
    assert len(deployed.refusals) == 2 * len(MISTAKES) + 2
    for case, refusal in deployed.refusals.items():
        r = refusal.run
        assert r.returncode != 0, f"{case}: {r.stdout[-3000:]}"
        said = re.findall(rf"^ +({re.escape(HOST)}: .*)$", r.stdout, re.MULTILINE)
        assert said == [refusal.line], f"{case}: {r.stdout[-3000:]}"  # that line, nothing else
        tasks = re.findall(r"^TASK \[(.*?)\]", r.stdout, re.MULTILINE)
        assert "variables are wrong" in tasks[-1], f"{case}: a task after the check ran: {tasks}"
        assert refusal.changed == [], f"{case} changed the root: {refusal.changed[:20]}"


def test_a_first_deploy_that_fails_leaves_the_host_hardened(deployed: Deployment) -> None:
    r = deployed.failed.run
    assert r.returncode != 0
    assert "monalisa-no-such-package" in r.stdout, r.stdout[-3000:]
    assert "TASK [hardening : Allow SSH keys only and no root login]" in r.stdout
    assert deployed.failed.left == []  # it failed before installing the appliance
    assert deployed.failed.sshd["passwordauthentication"] == "no", deployed.failed.sshd
    assert deployed.failed.sshd["permitrootlogin"] == "no"


def test_first_run_provisions_the_root(deployed: Deployment) -> None:
    recap = _recap(deployed.first.stdout)
    assert recap["failed"] == 0 and recap["unreachable"] == 0
    assert recap["changed"] > 10  # packages, user, venv, wheel, models, frames, config, unit
    assert RESTART_HANDLER in deployed.first.stdout


def test_second_run_changes_nothing(deployed: Deployment) -> None:
    recap = _recap(deployed.second.stdout)
    assert deployed.second.returncode == 0
    changed = re.findall(r"^changed: \[.*$", deployed.second.stdout, re.MULTILINE)
    assert recap["changed"] == 0, f"{_recap_line(deployed.second.stdout)}\n{changed}"
    assert recap["failed"] == 0
    assert "RUNNING HANDLER" not in deployed.second.stdout  # nothing restarted


def test_unit_installed_and_enabled(deployed: Deployment) -> None:
    unit = deployed.root / "etc/systemd/system/monalisa.service"
    assert unit.read_bytes() == (deployed.source / "deploy/monalisa.service").read_bytes()
    wants = deployed.root / "etc/systemd/system/multi-user.target.wants/monalisa.service"
    assert wants.is_symlink()
    assert os.readlink(wants) == "/etc/systemd/system/monalisa.service"
    r = deployed.chroot("systemctl", "is-enabled", "monalisa.service")
    assert r.stdout.strip() == "enabled", r.stdout + r.stderr


def test_the_units_documentation_is_installed(deployed: Deployment) -> None:
    unit = (deployed.root / "etc/systemd/system/monalisa.service").read_text()
    (line,) = [x for x in unit.splitlines() if x.startswith("Documentation=")]
    uris = line.removeprefix("Documentation=").split()
    assert uris and all(u.startswith("file:///") for u in uris), line
    for uri in uris:
        page = deployed.root / uri.removeprefix("file:///")
        assert page.is_file(), f"{uri}: not installed"
        assert page.read_bytes() == (deployed.source / "docs/technician" / page.name).read_bytes()


def test_config_validates_and_says_what_the_variables_say(deployed: Deployment) -> None:
    r = deployed.chroot(
        "/opt/monalisa/venv/bin/monalisa", "config", "check", "/etc/monalisa/config.toml"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    cfg = tomllib.loads((deployed.root / "etc/monalisa/config.toml").read_text())
    # Only what the inventory sets (host_vars say where the camera hangs; the appliance works
    # the band out from it, and `monalisa band` shows the same band from the deployed file),
    # and where the role puts the models and the frames. The model ('full') and the finder's
    # mode ('band') are the appliance's own defaults, so not written.
    assert cfg == {
        "detector": {"model_dir": "/opt/monalisa/models"},
        "finder": {"camera_height_m": MOUNT_HEIGHT_M, "camera_tilt_deg": MOUNT_TILT_DEG},
        "frames": {"directory": "/opt/monalisa/frames"},
    }
    # Nothing else: what the inventory does not set is the appliance's built-in default.
    from appliance.config import Config, dump_config

    r = deployed.chroot(
        "/opt/monalisa/venv/bin/monalisa", "config", "show", "/etc/monalisa/config.toml"
    )
    assert r.returncode == 0, r.stderr
    expected = Config(
        detector={"model_dir": "/opt/monalisa/models"},
        frames={"directory": "/opt/monalisa/frames"},
        finder={"camera_height_m": MOUNT_HEIGHT_M, "camera_tilt_deg": MOUNT_TILT_DEG},
    )
    assert r.stdout == dump_config(expected)
    r = deployed.chroot(
        "/opt/monalisa/venv/bin/monalisa", "band", "--config", "/etc/monalisa/config.toml"
    )
    assert r.returncode == 0, r.stderr
    assert f"{MOUNT_HEIGHT_M:g} m high, tilted {MOUNT_TILT_DEG:g}° down" in r.stdout
    assert "the band the appliance works out at start" in r.stdout
    assert (deployed.root / "opt/monalisa/models/blazeface.tflite").read_bytes() == (
        deployed.source / "models/blazeface.tflite"
    ).read_bytes()


def test_venv_runs_monalisa(deployed: Deployment) -> None:
    r = deployed.chroot("/opt/monalisa/venv/bin/monalisa", "--version")
    assert r.returncode == 0 and r.stdout.startswith("monalisa "), r.stdout + r.stderr
    r = deployed.chroot("/usr/local/bin/monalisa", "frames", "check", "/opt/monalisa/frames")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "OK" in r.stdout
    cfg = deployed.root / "opt/monalisa/venv/pyvenv.cfg"
    assert "include-system-site-packages = true" in cfg.read_text()


def venv_numpy(
    chroot: Callable[..., subprocess.CompletedProcess[str]],
) -> tuple[str, str]:
    """The version and the file of the numpy the installed venv imports (with the appliance)."""
    r = chroot(
        "/opt/monalisa/venv/bin/python",
        "-c",
        "import numpy, appliance; print(numpy.__version__, numpy.__file__)",
    )
    assert r.returncode == 0, r.stderr
    version, where = r.stdout.split()
    return version, where


# The distributions the appliance runs on: monalisa and its requirements, transitively
# (extras left out), as the installed venv sees them (its own and apt's, by normalised name).
_CLOSURE = r"""
import json, re
from importlib.metadata import PackageNotFoundError, distribution
norm = lambda n: re.sub(r"[-_.]+", "-", n).lower()
seen, todo = set(), ["monalisa"]
while todo:
    name = norm(todo.pop())
    if name in seen:
        continue
    seen.add(name)
    try:
        requires = distribution(name).requires or []
    except PackageNotFoundError:
        continue
    todo += [re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requires if "extra ==" not in r]
print(json.dumps(sorted(seen)))
"""


def venv_pip_check(
    chroot: Callable[..., subprocess.CompletedProcess[str]],
) -> tuple[list[str], list[str]]:
    """``pip check`` in the installed venv, split into the appliance's problems and apt's.

    The venv sees apt's packages (``--system-site-packages``), and some of Debian's declare
    requirements Debian ships apart (bookworm's ``pygobject``, pulled in by
    unattended-upgrades, requires ``pycairo``). Only a problem of a distribution the
    appliance runs on is the deploy's.

    Returns:
        (problems of monalisa's distributions, problems of other packages), pip's lines.
    """
    r = chroot("/opt/monalisa/venv/bin/python", "-c", _CLOSURE)
    assert r.returncode == 0, r.stderr
    ours = set(json.loads(r.stdout))
    assert {"monalisa", "numpy", "pydantic", "pygame-ce", "ai-edge-litert"} <= ours, ours
    r = chroot("/opt/monalisa/venv/bin/python", "-m", "pip", "check")
    lines = [line for line in r.stdout.splitlines() if line.strip() and "No broken" not in line]
    assert r.returncode == (1 if lines else 0), r.stdout + r.stderr

    def dist(line: str) -> str:
        return re.sub(r"[-_.]+", "-", line.split()[0]).lower()

    return [x for x in lines if dist(x) in ours], [x for x in lines if dist(x) not in ours]


def test_pip_check_finds_nothing_wrong_with_what_the_appliance_runs_on(
    deployed: Deployment,
) -> None:
    ours, apts = venv_pip_check(deployed.chroot)
    assert not ours, ours
    print(f"pip check, apt's own packages: {apts or 'nothing'}")


def test_venv_keeps_apts_numpy_and_detects_with_it(deployed: Deployment) -> None:
    # On a Pi, apt's picamera2 (simplejpeg) is built for apt's numpy: pip must not shadow it.
    r = deployed.chroot("dpkg-query", "--show", "--showformat=${Version}", "python3-numpy")
    assert r.returncode == 0, r.stderr
    apt_version = r.stdout.split(":")[-1].split("-")[0].split("+")[0]
    constraints = (deployed.root / "opt/monalisa/pip-constraints.txt").read_text()
    assert f"numpy=={apt_version}" in constraints.splitlines()
    version, where = venv_numpy(deployed.chroot)
    assert version == apt_version
    assert where.startswith("/usr/lib/python3/dist-packages/"), where
    # ... and the appliance's detector runs on that numpy (the installed model, found through
    # the installed config as a technician's `monalisa detect` finds it, a real face).
    Image.fromarray(data.astronaut()).save(deployed.root / "tmp/astronaut.png")
    r = deployed.chroot("/usr/local/bin/monalisa", "detect", "--json", "/tmp/astronaut.png")
    assert r.returncode == 0, r.stdout + r.stderr
    (face,) = json.loads(r.stdout)["faces"]
    assert face["score"] > 0.8
    (rx, ry), (lx, ly) = face["keypoints"][:2]
    assert 195 < rx < 210 and 240 < lx < 255 and 95 < ry < 112 and 95 < ly < 112


def test_what_the_deployed_unit_starts_tracks_and_health_says_ok(deployed: Deployment) -> None:
    # The unit's ExecStart= with the role's config, as the service user: it must find every
    # model it needs (the short-range follow model too) and frame set where the role put them.
    clip = deployed.root / CLIP_IN_ROOT.lstrip("/")
    shutil.copytree(CLIP, clip, dirs_exist_ok=True)
    try:
        start_the_unit_and_check_health(deployed.root, CLIP_IN_ROOT, "/opt/monalisa/frames")
    finally:  # later tests expect an image nothing has run in
        shutil.rmtree(clip, ignore_errors=True)
        shutil.rmtree(deployed.root / "run/monalisa", ignore_errors=True)
        shutil.rmtree(deployed.root / "var/cache/monalisa", ignore_errors=True)


def test_config_check_names_a_missing_follow_model(deployed: Deployment) -> None:
    bad = deployed.root / "tmp/no-follow-model.toml"
    bad.write_text('[detector]\nmodel = "/opt/monalisa/models/blazeface.tflite"\n')
    r = deployed.chroot(
        "/opt/monalisa/venv/bin/monalisa", "config", "check", "/tmp/no-follow-model.toml"
    )
    assert r.returncode == 78, r.stdout + r.stderr
    (line,) = r.stderr.splitlines()
    assert line.startswith("/tmp/no-follow-model.toml: finder.follow_model: model 'short': "), line
    assert "blazeface_short_range.tflite not found in" in line


def test_service_user(deployed: Deployment) -> None:
    r = deployed.chroot("id", "-nG", "monalisa")
    assert r.returncode == 0, r.stderr
    assert {"monalisa", "video", "render"} <= set(r.stdout.split())
    r = deployed.chroot("getent", "passwd", "monalisa")
    fields = r.stdout.strip().split(":")
    assert fields[6] == "/usr/sbin/nologin"
    assert int(fields[2]) < 1000  # a system user
    r = deployed.chroot("getent", "shadow", "monalisa")
    assert r.stdout.split(":")[1].startswith("!"), "password must be locked"


def test_sshd_accepts_the_hardened_config(deployed: Deployment) -> None:
    r = deployed.chroot("/usr/sbin/sshd", "-t")
    assert r.returncode == 0, r.stderr
    r = deployed.chroot("/usr/sbin/sshd", "-T")
    assert r.returncode == 0, r.stderr
    effective = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["pubkeyauthentication"] == "yes"
    assert "monalisa" in effective["denyusers"].split()
    unattended = (deployed.root / "etc/apt/apt.conf.d/52monalisa-unattended").read_text()
    assert 'Automatic-Reboot "false"' in unattended


def test_check_mode_runs_clean(deployed: Deployment) -> None:
    r = _run(_playbook_cmd(deployed.inventory, deployed.source, "deploy.yml", "--check"))
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    recap = _recap(r.stdout)
    assert recap["failed"] == 0 and recap["changed"] == 0, _recap_line(r.stdout)


def test_bad_config_is_refused_and_the_old_one_kept(deployed: Deployment) -> None:
    path = deployed.root / "etc/monalisa/config.toml"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    r = _run(
        _playbook_cmd(
            deployed.inventory,
            deployed.source,
            "deploy.yml",
            "--start-at-task",
            "monalisa : Write the configuration from the inventory's variables "
            "(on the control machine)",
            "-e",
            json.dumps({"monalisa_config_extra": {"camera": {"hfov_deg": 500, "zoom": 2}}}),
        )
    )
    assert r.returncode != 0
    assert "camera.hfov_deg = 500" in r.stdout and "camera.zoom" in r.stdout, r.stdout[-4000:]
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_health_playbook_reports_each_portrait(deployed: Deployment) -> None:
    health_cmd = "/usr/local/bin/monalisa health --json --config /tmp/health-test.toml"
    # Nothing is running in an offline image: no status file, so CRITICAL and the play fails.
    (deployed.root / "tmp/health-test.toml").write_text("[health]\nstale_after_s = 600\n")
    r = _run(
        [
            _tool("ansible-playbook"),
            "-i",
            str(deployed.inventory),
            "health.yml",
            "-e",
            f"health_command='{health_cmd}'",
        ]
    )
    assert r.returncode != 0
    assert re.search(rf"{HOST}\s+CRITICAL", r.stdout), r.stdout[-3000:]
    # A running appliance's status file (as StatusWriter writes it): OK, one row with figures.
    from appliance.status import CameraStatus, Status, StatusWriter

    status = Status(
        version="0.1.0",
        pid=1,
        uptime_s=3600.0,
        loop_fps=29.5,
        display_fps=29.5,
        frame_index=16,
        frame_count=33,
        gaze_state="tracking",
        viewers_last_minute=1,
        last_viewer_age_s=0.5,
        detector_ms=12.0,
        cpu_temp_c=51.5,
        written_at=time.time(),
    )
    status.camera = CameraStatus(source="picamera2", state="running", fps=30.0)
    StatusWriter(deployed.root / "run/monalisa/status.json").write(status)
    r = _run(
        [
            _tool("ansible-playbook"),
            "-i",
            str(deployed.inventory),
            "health.yml",
            "-e",
            f"health_command='{health_cmd}'",
        ]
    )
    assert r.returncode == 0, r.stdout[-4000:]
    row = re.search(rf"{HOST}\s+OK\s+tracking\s+29\.5\s+51\.5°C\s+0 s ago", r.stdout)
    assert row, r.stdout[-3000:]


def test_health_table_shows_a_closed_portrait_and_its_next_opening(tmp_path: Path) -> None:
    """The fleet table from health.yml, run on this machine (no deploy needed)."""
    from appliance.status import CameraStatus, ScheduleStatus, Status, StatusWriter

    status = Status(
        version="0.1.0",
        pid=os.getpid(),
        uptime_s=3600.0,
        gaze_state="closed",
        frame_count=33,
        cpu_temp_c=41.5,
        last_viewer_age_s=3 * 86400.0,
        schedule=ScheduleStatus(
            open=False,
            until="2026-12-08T10:00:00+01:00",
            text="closed until Tue 10:00",
            screen="off",
            unseen_open_s=600.0,
        ),
        written_at=time.time(),
    )
    status.camera = CameraStatus(source="picamera2", state="stopped")
    path = tmp_path / "status.json"
    StatusWriter(path).write(status)
    health_cmd = f"{BIN / 'monalisa'} health --json --status-file {path}"
    r = _run(
        [
            _tool("ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            "-e",
            f"health_command='{health_cmd}'",
            "health.yml",
        ],
        timeout=300,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    flat = " ".join(r.stdout.split())  # the YAML callback wraps long rows
    expected = "localhost OK closed - 41.5°C 72.0 h ago closed until Tue 10:00, camera stopped"
    assert expected in flat, r.stdout[-3000:]


def _live_frames(deployed: Deployment) -> dict[str, str]:
    """SHA-256 of every file of the live frame set, by path inside it (links resolved in root)."""
    r = deployed.chroot(
        "sh", "-c", "cd /opt/monalisa/frames/ && find -L . -type f -print0 | xargs -0 sha256sum"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return {line[66:]: line[:64] for line in r.stdout.splitlines()}


def _copies_of(deployed: Deployment, name: str) -> list[str]:
    """The content folders holding versions of frame set NAME on the host."""
    return sorted(
        p.name
        for p in (deployed.root / "opt/monalisa/framesets").iterdir()
        if p.name.startswith(f".{name}-") and p.is_dir() and not p.is_symlink()
    )


def test_a_set_pushed_again_under_the_live_name(deployed: Deployment, tmp_path: Path) -> None:
    """Same name, other content: a broken set changes nothing, a good one goes live + restart;
    a file lost from the live store is put back, and so are modes and owners changed there."""
    live = os.readlink(deployed.root / "opt/monalisa/frames")
    name = Path(live).name
    before = _live_frames(deployed)
    assert "frames.toml" in "\n".join(before)

    def push(folder: Path) -> subprocess.CompletedProcess:
        return _run(
            _playbook_cmd(
                deployed.inventory, deployed.source, "update-frames.yml", "-e", f"frames={folder}"
            )
        )

    def frames_check() -> subprocess.CompletedProcess:
        return deployed.chroot("/usr/local/bin/monalisa", "frames", "check", "/opt/monalisa/frames")

    # The good set with one frame that is not an image, under the live set's name.
    broken = tmp_path / "broken" / name
    shutil.copytree(deployed.source / "frames", broken)
    (broken / "patches/frame_005.png").write_bytes(b"not a PNG at all")
    r = push(broken)
    assert r.returncode != 0, r.stdout[-4000:]
    assert "patches/frame_005.png" in r.stdout, r.stdout[-4000:]
    assert RESTART_HANDLER not in r.stdout
    assert _live_frames(deployed) == before, "a broken set overwrote the live one"
    assert frames_check().returncode == 0
    assert len(_copies_of(deployed, name)) == 1, "the refused copy was left behind"

    # A modified valid set under the same name: it goes live and the service is restarted.
    modified = tmp_path / "modified" / name
    shutil.copytree(deployed.source / "frames", modified)
    manifest = modified / "frames.toml"
    text = manifest.read_text(encoding="utf-8")
    rest = re.search(r"^rest_index = (\d+)$", text, re.MULTILINE)
    assert rest, text
    other = f"rest_index = {int(rest[1]) - 1}"  # another frame of the set
    manifest.write_text(text.replace(rest[0], other), encoding="utf-8")
    r = push(modified)
    assert r.returncode == 0, r.stdout[-4000:]
    assert RESTART_HANDLER in r.stdout, r.stdout[-4000:]
    after = _live_frames(deployed)
    assert after["./frames.toml"] != before["./frames.toml"]
    assert {k: v for k, v in after.items() if k != "./frames.toml"} == {
        k: v for k, v in before.items() if k != "./frames.toml"
    }
    shown = deployed.chroot("cat", "/opt/monalisa/frames/frames.toml")  # absolute links
    assert other in shown.stdout, shown.stdout + shown.stderr
    assert os.readlink(deployed.root / "opt/monalisa/frames") == live
    assert frames_check().returncode == 0
    assert len(_copies_of(deployed, name)) == 1, "the old copy was not removed"

    # The same set again: nothing copied, nothing switched, nothing restarted.
    r = push(modified)
    assert r.returncode == 0, r.stdout[-4000:]
    assert _recap(r.stdout)["changed"] == 0, _recap_line(r.stdout)
    assert RESTART_HANDLER not in r.stdout

    # Back to the original content (the rest of the tests expect it).
    original = tmp_path / "original" / name
    shutil.copytree(deployed.source / "frames", original)
    r = push(original)
    assert r.returncode == 0, r.stdout[-4000:]
    assert RESTART_HANDLER in r.stdout
    assert _live_frames(deployed) == before

    # A patch lost on the Pi from the live store is put back (and the service restarted),
    # with its mode and owner.
    store = deployed.root / os.readlink(deployed.root / live.lstrip("/")).lstrip("/")
    lost = store / "patches/frame_005.png"
    lost.unlink()
    r = push(original)
    assert r.returncode == 0, r.stdout[-4000:]
    assert RESTART_HANDLER in r.stdout, r.stdout[-4000:]
    assert _live_frames(deployed) == before
    assert (lost.stat().st_mode & 0o7777, lost.stat().st_uid) == (0o644, 0)
    assert (lost.parent.stat().st_mode & 0o7777, lost.parent.stat().st_uid) == (0o755, 0)

    # Content intact, but given to the Pi's first user or no longer readable by the service
    # user: put back as the archive has them, and the service restarted. First patches/ alone,
    # its owner only (tar --diff does not see it), then a patch's mode, a file's and the store
    # folder's owner.
    def pushed_back(*paths: Path) -> None:
        r = push(original)
        assert r.returncode == 0, r.stdout[-4000:]
        assert RESTART_HANDLER in r.stdout, r.stdout[-4000:]
        assert _live_frames(deployed) == before
        for path in paths:
            st = path.stat()
            expected = 0o755 if path.is_dir() else 0o644
            assert (st.st_mode & 0o7777, st.st_uid, st.st_gid) == (expected, 0, 0), path

    os.chown(store / "patches", 1000, 1000)
    pushed_back(store / "patches")
    unreadable = store / "patches/frame_006.png"
    unreadable.chmod(0o600)
    given = [store / "base.png", store]
    for path in given:
        os.chown(path, 1000, 1000)
    pushed_back(unreadable, *given)
    # The push after that copies nothing and restarts nothing.
    r = push(original)
    assert r.returncode == 0, r.stdout[-4000:]
    assert _recap(r.stdout)["changed"] == 0, _recap_line(r.stdout)
    assert RESTART_HANDLER not in r.stdout


def test_update_frames_switches_only_to_a_valid_set(deployed: Deployment, tmp_path: Path) -> None:
    link = deployed.root / "opt/monalisa/frames"
    assert os.readlink(link) == "/opt/monalisa/framesets/frames"
    broken = tmp_path / "broken-set"
    broken.mkdir()
    (broken / "frames.toml").write_text('count = 2\nsize = [64, 64]\n[[frames]]\nfile = "x.png"\n')
    r = _run(
        _playbook_cmd(
            deployed.inventory, deployed.source, "update-frames.yml", "-e", f"frames={broken}"
        )
    )
    assert r.returncode != 0
    assert "broken-set" in r.stdout
    assert os.readlink(link) == "/opt/monalisa/framesets/frames", "a broken set went live"
    assert _copies_of(deployed, "broken-set") == [], "the refused set was left on the host"

    new = tmp_path / "new-set"
    shutil.copytree(deployed.source / "frames", new)
    r = _run(
        _playbook_cmd(
            deployed.inventory, deployed.source, "update-frames.yml", "-e", f"frames={new}"
        )
    )
    assert r.returncode == 0, r.stdout[-4000:]
    assert os.readlink(link) == "/opt/monalisa/framesets/new-set"
    assert RESTART_HANDLER in r.stdout
    r = deployed.chroot("/usr/local/bin/monalisa", "frames", "check", "/opt/monalisa/frames")
    assert r.returncode == 0, r.stdout + r.stderr


def test_kiosk_role_edits_a_pi_boot_partition(deployed: Deployment, tmp_path: Path) -> None:
    """The Pi-only kiosk role, forced on, against a Raspberry Pi OS-like boot partition."""
    boot = make_boot_partition(deployed.root)
    # A monitor on HDMI-A-1 sending its EDID (sysfs stand-in), none on HDMI-A-2.
    edid = bytes([0, 255, 255, 255, 255, 255, 255, 0]) + bytes(range(120))
    drm = deployed.root / "srv/drm-stand-in"
    for connector, sent in (("HDMI-A-1", edid), ("HDMI-A-2", b"")):
        (drm / f"card1-{connector}").mkdir(parents=True, exist_ok=True)
        (drm / f"card1-{connector}" / "edid").write_bytes(sent)
    playbook = tmp_path / "kiosk.yml"
    playbook.write_text(
        "- name: Configure the kiosk only\n  hosts: all\n  gather_facts: false\n"
        "  roles:\n    - role: kiosk\n"
    )
    cmd = [
        _tool("ansible-playbook"),
        "-i",
        str(deployed.inventory),
        str(playbook),
        "-e",
        "kiosk_on_pi=true",
        "-e",
        "kiosk_display_rotation=90",
    ]
    hdmi = [
        "-e",
        "kiosk_hdmi_mode=1920x1080@60",
        "-e",
        "kiosk_hdmi_edid_capture=true",
        "-e",
        "kiosk_drm_sysfs_dir=/srv/drm-stand-in",
    ]
    env = dict(_env(), ANSIBLE_ROLES_PATH=str(ANSIBLE_DIR / "roles"))

    def play(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cmd, *extra], cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True, timeout=600
        )

    runs = [play(*hdmi) for _ in range(2)]
    assert runs[0].returncode == 0, runs[0].stdout[-4000:]
    assert _recap(runs[0].stdout)["changed"] > 0
    assert _recap(runs[1].stdout)["changed"] == 0, _recap_line(runs[1].stdout)
    tokens = (boot / "cmdline.txt").read_text().split()
    assert len((boot / "cmdline.txt").read_text().splitlines()) == 1
    assert "console=tty1" not in tokens and "console=tty3" in tokens
    assert "console=serial0,115200" in tokens and "rootwait" in tokens
    for token in ("consoleblank=0", "quiet", "fbcon=rotate:1"):
        assert tokens.count(token) == 1, tokens
    assert "fbcon=rotate:3" not in tokens
    # HDMI is driven whether or not a monitor answers at boot: forced hotplug, a forced
    # mode, and the monitor's EDID captured at deploy time for every boot.
    for token in (
        "vc4.force_hotplug=1",
        "video=HDMI-A-1:1920x1080@60D",
        "drm.edid_firmware=HDMI-A-1:edid/monalisa-HDMI-A-1.bin",
    ):
        assert tokens.count(token) == 1, tokens
    assert (deployed.root / "lib/firmware/edid/monalisa-HDMI-A-1.bin").read_bytes() == edid
    # The defaults: hotplug forced, no mode, no EDID change; a mode no longer wanted goes.
    assert play().returncode == 0
    tokens = (boot / "cmdline.txt").read_text().split()
    assert tokens.count("vc4.force_hotplug=1") == 1
    assert not [t for t in tokens if t.startswith("video=")], tokens
    # The second port (bit 1 of the mask), and no hotplug forced at all.
    assert play("-e", "kiosk_hdmi_connector=HDMI-A-2").returncode == 0
    tokens = (boot / "cmdline.txt").read_text().split()
    assert [t for t in tokens if "force_hotplug" in t] == ["vc4.force_hotplug=2"], tokens
    assert play("-e", "kiosk_hdmi_force_hotplug=false").returncode == 0
    assert "force_hotplug" not in (boot / "cmdline.txt").read_text()
    bad = play("-e", "kiosk_hdmi_mode=full-hd")
    assert bad.returncode != 0 and "kiosk_hdmi_mode" in bad.stdout, bad.stdout[-3000:]
    config = (boot / "config.txt").read_text()
    assert "dtoverlay=vc4-kms-v3d" in config and config.count("camera_auto_detect=1") == 2
    assert os.readlink(deployed.root / "etc/systemd/system/default.target").endswith(
        "multi-user.target"
    )


@pytest.fixture(scope="module")
def museum_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A set built by ``monalisa frames build`` from a painting-like 3072x4578 scan (14 Mpx):
    about 20 s here, once per session."""
    work = tmp_path_factory.mktemp("museum")
    painting = work / "scan.png"
    Image.fromarray(museum_painting(3072)).save(painting, compress_level=1)
    out = work / "museum"
    r = subprocess.run(
        [*MONALISA, "frames", "build", str(painting), "--out", str(out)],
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    return out


def test_a_museum_set_goes_live_without_strays_and_starts_within_the_timeout(
    deployed: Deployment, museum_set: Path, tmp_path: Path
) -> None:
    """update-frames.yml copies a 14 Mpx set's version 2 files only (not full frames left
    beside them); the unit's ExecStart= sends READY=1 before its start timeout (as systemd
    counts it: TimeoutStartSec=, or later if extended) and fills its CacheDirectory=."""
    folder = tmp_path / "museum"
    shutil.copytree(museum_set, folder)
    v2_files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    assert {BASE_NAME, PREVIEW_NAME, MANIFEST_NAME, CONTACT_SHEET} <= set(v2_files)
    shutil.copy(folder / BASE_NAME, folder / "frame_16.png")  # strays: full frames
    (folder / "export").mkdir()
    shutil.copy(folder / BASE_NAME, folder / "export" / "frame_00.png")
    r = _run(
        _playbook_cmd(
            deployed.inventory, deployed.source, "update-frames.yml", "-e", f"frames={folder}"
        )
    )
    assert r.returncode == 0, r.stdout[-4000:]
    store = os.readlink(deployed.root / "opt/monalisa/framesets/museum")  # absolute in root
    live = deployed.root / store.lstrip("/")
    copied = sorted(str(p.relative_to(live)) for p in live.rglob("*") if p.is_file())
    assert copied == v2_files

    unit = (deployed.root / "etc/systemd/system/monalisa.service").read_text("utf-8")
    timeout_s = float(unit_value(unit, "TimeoutStartSec"))
    cache = deployed.root / "var/cache" / unit_value(unit, "CacheDirectory")
    shutil.rmtree(cache, ignore_errors=True)
    clip = deployed.root / CLIP_IN_ROOT.lstrip("/")
    shutil.copytree(CLIP, clip, dirs_exist_ok=True)
    sockdir = deployed.root / "run/monalisa-notify"
    sockdir.mkdir(parents=True, exist_ok=True)
    notify = Notify(sockdir)
    os.chmod(sockdir, 0o755)
    os.chmod(notify.path, 0o666)  # the service user sends to it
    try:
        t0 = time.monotonic()
        start_the_unit_and_check_health(
            deployed.root,
            CLIP_IN_ROOT,
            "/opt/monalisa/frames",
            duration_s=300,
            wait_s=280,
            env={"NOTIFY_SOCKET": "/" + str(notify.path.relative_to(deployed.root))},
            until=lambda: any(cache.glob("portrait-*.npz")),
        )
        cached = [p.name for p in cache.glob("portrait-*.npz")]
    finally:  # later tests expect an image nothing has run in
        notify.close()
        for folder in (clip, sockdir, cache, deployed.root / "run/monalisa"):
            shutil.rmtree(folder, ignore_errors=True)
    assert cached, "nothing cached"
    ready = notify.times("READY=1")
    assert ready, notify.messages
    # systemd's start deadline: TimeoutStartSec= after the start, or as far as an
    # EXTEND_TIMEOUT_USEC= message (sent while a slow step runs) pushes it.
    deadline = t0 + timeout_s
    for t, m in notify.messages:
        if m.startswith("EXTEND_TIMEOUT_USEC=") and t < ready[0]:
            deadline = max(deadline, t + int(m.split("=", 1)[1]) / 1e6)
    print(f"museum set: READY=1 {ready[0] - t0:.1f} s after the start ({timeout_s:g} s allowed)")
    assert ready[0] <= deadline, (ready[0] - t0, notify.messages)

    # Back to the original set.
    r = _run(
        _playbook_cmd(
            deployed.inventory,
            deployed.source,
            "update-frames.yml",
            "-e",
            f"frames={deployed.source / 'frames'}",
        )
    )
    assert r.returncode == 0, r.stdout[-4000:]
