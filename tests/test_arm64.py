"""The Pi's own platform: arm64 Debian bookworm and trixie roots, provisioned and run under qemu.

Raspberry Pi OS (64-bit) is Debian arm64: bookworm (Python 3.11, apt's numpy 1.24) and, from
Raspberry Pi Imager today, trixie (Python 3.13, numpy 2.2). For each, an arm64 ``debootstrap``
minbase root (cached as a tarball in ``$MONALISA_TEST_CACHE`` like the x86 one) is provisioned
by the real ``deploy.yml`` over the chroot connection with ``monalisa_is_pi=true`` (a
Raspberry Pi OS-like boot partition is made for the kiosk role; ``python3-picamera2`` is not in
Debian's archive, which the role must say and go on), twice, the second run changing nothing.
Then, inside the root: the installed unit's ``ExecStart=`` runs as its user on a replay clip
with the headless display and ``monalisa health`` must say OK; ``monalisa detect --json`` on
the test photos must find what this machine's x86 detector finds (same faces, points within
0.05 px, scores within 0.001); the SDL inside the installed pygame-ce must list the KMSDRM
video driver, and the libraries it opens for it must load.

Emulation, at one of two levels, printed first:

- ``binfmt``: arm64 programs run through ``qemu-user-static`` registered with ``binfmt_misc``
  (with the F flag, so the root needs no interpreter of its own). The test mounts
  ``binfmt_misc`` and registers qemu itself if it can (root). Everything above runs.
- ``single``: where binfmt cannot be had, only one arm64 process at a time runs (``chroot ROOT
  qemu-aarch64-static PROGRAM``). The root's packages are unpacked, not installed, and the
  host's pip puts the wheels in (:mod:`tests.support.arm64_single`); the release's Python,
  apt's numpy, the detector's agreement, SDL's KMSDRM and ``monalisa run`` + ``health`` are
  checked. The deploy's tests cannot run there: they fail, naming the missing binfmt, so a
  machine without it never passes silently. ``MONALISA_ARM64_LEVEL=single`` asks for this
  level where binfmt works (then the deploy's tests are skipped, saying why); ``=binfmt``
  fails where binfmt cannot be had.

Each step's time is printed (``pytest -s``).

Run with ``make test-arm64`` (slow: on a shared 2-core machine each release's first deploy takes
12-60 min, its second 6-30 min; see docs/dev/arm64.md). ``make test`` runs the
single level (``make test-arm64-single``, a few minutes); ``make unit`` leaves this file out.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from appliance.frames import FrameSet, diff_patch
from appliance.framewrite import write_set
from tests.support import arm64_single
from tests.support.run import install_debs
from tests.support.unit_run import (
    CLIP,
    CLIP_IN_ROOT,
    PATH,
    check_health_while_tracking,
    run_in,
    start_the_unit_and_check_health,
)
from tests.test_ansible import (
    CACHE,
    MIRROR,
    _need_root_and_debootstrap,
    _prepare_offline_root,
    _pristine_tarball,
    _recap,
    _recap_line,
    _tool,
    copy_sources,
    deploy_twice,
    make_boot_partition,
    release_root,
    venv_numpy,
    venv_pip_check,
    write_inventory,
)

# The first test waits for the fixture's two deploys (see DEPLOY_TIMEOUT_S).
pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(8 * 3600)]

REPO = Path(__file__).resolve().parent.parent
PHOTOS_IN_ROOT = "/srv/photos"
VENV_PYTHON = "/opt/monalisa/venv/bin/python"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
LEVEL_ENV = "MONALISA_ARM64_LEVEL"
BINFMT_LEVEL, SINGLE_LEVEL = "binfmt", "single"
# At the single level: no venv, no console script; the root's python3 runs the package.
SINGLE_PYTHON = "/usr/bin/python3"
SINGLE_NAMES = {
    VENV_PYTHON: [SINGLE_PYTHON],
    "/usr/local/bin/monalisa": [SINGLE_PYTHON, "-m", "appliance.cli"],
}
NOBODY = "65534:65534"  # the user the single level runs the appliance as (no role made one)
# What each release's apt gives (Raspberry Pi OS uses Debian's python3 and numpy).
RELEASES = {"bookworm": ("3.11", "1."), "trixie": ("3.13", "2.")}
MODELS = ["blazeface.tflite", "blazeface_short_range.tflite"]
TOLERANCE_PX, TOLERANCE_SCORE = 0.05, 0.001


def _binfmt_ready() -> bool:
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists():
        return False
    text = entry.read_text()
    flags = next((line for line in text.splitlines() if line.startswith("flags:")), "")
    return text.startswith("enabled") and "F" in flags.split(":", 1)[1]


def emulation_level() -> tuple[str, str]:
    """Set up arm64 emulation; return the level that runs and why.

    Installs ``qemu-user-static`` (both levels run it). Unless the single level is asked for
    (``MONALISA_ARM64_LEVEL``), installs ``binfmt-support``, mounts ``binfmt_misc`` if it is
    not, and registers qemu-aarch64 with the F flag (the kernel opens the interpreter once,
    so it need not exist inside the root). Where the machine does not allow that, the single
    level runs, and the reason is returned to be printed.
    """
    asked = os.environ.get(LEVEL_ENV, "")
    if asked not in ("", BINFMT_LEVEL, SINGLE_LEVEL):
        pytest.fail(f"{LEVEL_ENV}={asked!r}: use {BINFMT_LEVEL!r}, {SINGLE_LEVEL!r} or nothing")
    install_debs("qemu-user-static")
    if asked == SINGLE_LEVEL:
        return SINGLE_LEVEL, f"asked for by {LEVEL_ENV}"
    if not _binfmt_ready():
        install_debs("binfmt-support")
        if not (BINFMT / "register").exists():
            subprocess.run(
                ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)],
                capture_output=True,
                check=False,
            )
        subprocess.run(
            ["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, check=False
        )
    if _binfmt_ready():
        return BINFMT_LEVEL, "qemu-aarch64 registered, F flag"
    why = (
        f"qemu-aarch64 is not registered with the F flag in {BINFMT} (mount binfmt_misc and "
        "run `update-binfmts --enable qemu-aarch64` as root; a container may need "
        "--privileged), so debootstrap, apt and Ansible cannot run in an arm64 chroot"
    )
    if asked == BINFMT_LEVEL:
        pytest.fail(f"arm64 emulation: {why}")
    return SINGLE_LEVEL, why


@dataclass
class Arm64Root:
    suite: str
    root: Path
    source: Path
    level: str
    first: subprocess.CompletedProcess[str] | None
    second: subprocess.CompletedProcess[str] | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def models_dir(self) -> str:
        """Where the models are in the root: the role's place, or the single level's."""
        return "/opt/monalisa/models" if self.level == BINFMT_LEVEL else arm64_single.MODELS_DIR

    def argv(self, *cmd: str) -> list[str]:
        """The host's command that runs ``cmd`` in the root at this level.

        At the single level, qemu starts the program itself: the venv's python and the
        console script become the root's python3, and a bare name is looked up in the root.
        """
        if self.level == BINFMT_LEVEL:
            return ["chroot", str(self.root), *cmd]
        program, *rest = [*SINGLE_NAMES.get(cmd[0], [cmd[0]]), *cmd[1:]]
        if not program.startswith("/"):
            found = [d for d in ("/usr/bin", "/usr/sbin") if (self.root / d[1:] / program).exists()]
            assert found, f"{program}: not in the root's /usr/bin or /usr/sbin"
            program = f"{found[0]}/{program}"
        return ["chroot", str(self.root), arm64_single.QEMU, program, *rest]

    def chroot(self, *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        if self.level == BINFMT_LEVEL:
            return run_in(self.root, *cmd, timeout=timeout)
        return arm64_single.in_root(self.root, *self.argv(*cmd)[3:], timeout=timeout)

    def timed(self, name: str, t0: float) -> None:
        self.seconds[name] = time.monotonic() - t0
        print(f"\n[arm64 {self.suite}] {name}: {self.seconds[name]:.0f} s", flush=True)

    def needs_binfmt(self, what: str) -> None:
        """Fail (or skip, where the single level was asked for): ``what`` needs binfmt."""
        if self.level == BINFMT_LEVEL:
            return
        why = f"level {SINGLE_LEVEL}: {what} needs arm64 programs to start one another (binfmt)"
        if os.environ.get(LEVEL_ENV) == SINGLE_LEVEL:
            pytest.skip(why)
        pytest.fail(why)


@pytest.fixture(scope="module", params=list(RELEASES))
def arm64(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Arm64Root]:
    suite: str = request.param
    _need_root_and_debootstrap()
    seconds: dict[str, float] = {}

    def step(name: str, t0: float) -> None:
        seconds[name] = time.monotonic() - t0
        print(f"\n[arm64 {suite}] {name}: {seconds[name]:.0f} s", flush=True)

    t0 = time.monotonic()
    level, why = emulation_level()
    print(f"\n[arm64 {suite}] emulation level: {level} ({why})", flush=True)
    step("emulation set up", t0)
    work = tmp_path_factory.mktemp(f"arm64-{suite}")
    root = work / "root"
    root.mkdir()
    source = copy_sources(work / "src")
    try:
        if level == SINGLE_LEVEL:
            t0 = time.monotonic()
            tarball = arm64_single.foreign_tarball(CACHE, suite, MIRROR)
            step("debootstrap --foreign --arch=arm64 (or its cached tarball)", t0)
            t0 = time.monotonic()
            done = arm64_single.build(root, tarball, source, work)
            step("unpack, link, ldconfig, pip --platform", t0)
            print(f"\n[arm64 {suite}] single-process root: {done}", flush=True)
            shutil.copytree(CLIP, root / CLIP_IN_ROOT.lstrip("/"))
            yield Arm64Root(suite, root, source, level, None, None, seconds)
            return
        _tool("ansible-playbook")
        t0 = time.monotonic()
        tarball = _pristine_tarball(suite, "arm64")
        step("debootstrap --arch=arm64 (or its cached tarball)", t0)
        t0 = time.monotonic()
        subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
        step("unpack", t0)
        _prepare_offline_root(root)
        make_boot_partition(root)  # an image's boot partition, mounted where Raspberry Pi OS has it
        shutil.copytree(CLIP, root / CLIP_IN_ROOT.lstrip("/"))
        inventory = write_inventory(work, root)
        first, second = deploy_twice(inventory, source, seconds, is_pi=True)
        for name in ("first deploy", "second deploy"):
            print(f"\n[arm64 {suite}] {name}: {seconds[name]:.0f} s", flush=True)
        yield Arm64Root(suite, root, source, level, first, second, seconds)
    finally:
        print(
            f"\n[arm64 {suite}] times: " + ", ".join(f"{k} {v:.0f} s" for k, v in seconds.items()),
            flush=True,
        )
        release_root(root)
        shutil.rmtree(root, ignore_errors=True)


def test_the_root_is_arm64_with_the_releases_python(arm64: Arm64Root) -> None:
    python, numpy_major = RELEASES[arm64.suite]
    r = arm64.chroot("dpkg", "--print-architecture")
    assert r.stdout.strip() == "arm64"
    r = arm64.chroot(
        "/opt/monalisa/venv/bin/python", "-c", "import platform; print(platform.machine())"
    )
    assert r.stdout.strip() == "aarch64", r.stderr
    r = arm64.chroot("python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])")
    assert r.stdout.strip() == python
    version, where = venv_numpy(arm64.chroot)
    assert version.startswith(numpy_major) and where.startswith("/usr/lib/python3/dist-packages/")


def test_deployed_as_a_pi_twice_and_the_second_run_changes_nothing(arm64: Arm64Root) -> None:
    arm64.needs_binfmt("deploy.yml over the chroot connection")
    assert arm64.first is not None and arm64.second is not None
    first = _recap(arm64.first.stdout)
    assert first["failed"] == 0 and first["unreachable"] == 0, _recap_line(arm64.first.stdout)
    assert "Raspberry Pi: True" in arm64.first.stdout
    # picamera2 is in Raspberry Pi's archive only: the role says so and goes on.
    # The message as one line, however wrapped, and unquoted: the YAML result format writes
    # it single-quoted, each ' doubled.
    said = " ".join(arm64.first.stdout.replace("''", "'").split())
    assert "python3-picamera2 is not in this host's apt sources" in said, said[-3000:]
    second = _recap(arm64.second.stdout)
    assert arm64.second.returncode == 0, arm64.second.stdout[-6000:]
    assert second["changed"] == 0 and second["failed"] == 0, _recap_line(arm64.second.stdout)
    assert "RUNNING HANDLER" not in arm64.second.stdout
    # The kiosk role edited the boot partition as on a Pi.
    cmdline = (arm64.root / "boot/firmware/cmdline.txt").read_text()
    assert "consoleblank=0" in cmdline.split()


def test_the_constraints_keep_apts_numpy_with_its_release_pin(arm64: Arm64Root) -> None:
    arm64.needs_binfmt("the role's constraints file (and pip check in its venv)")
    version, _ = venv_numpy(arm64.chroot)
    lines = (arm64.root / "opt/monalisa/pip-constraints.txt").read_text().splitlines()
    assert f"numpy=={version}" in lines
    assert ("ml-dtypes<0.6" in lines) == version.startswith("1.")
    ours, apts = venv_pip_check(arm64.chroot)
    assert not ours, ours
    print(f"\n[arm64 {arm64.suite}] pip check, apt's own packages: {apts or 'nothing'}")


# SDL's driver list, read through ctypes from the libSDL2 pygame-ce's wheel bundles (no screen
# needed), and the system libraries its KMSDRM driver opens at run time.
SDL_PROBE = r"""
import ctypes, glob, json, os, sys, pygame
site = os.path.dirname(os.path.dirname(pygame.__file__))
libs = sorted(glob.glob(os.path.join(site, "pygame_ce.libs", "libSDL2-2*.so*")))
sdl = ctypes.CDLL(libs[0])
sdl.SDL_GetVideoDriver.restype = ctypes.c_char_p
drivers = [sdl.SDL_GetVideoDriver(i).decode() for i in range(sdl.SDL_GetNumVideoDrivers())]
loaded = {}
for name in ("libdrm.so.2", "libgbm.so.1", "libEGL.so.1", "libGLESv2.so.2"):
    try:
        ctypes.CDLL(name)
        loaded[name] = True
    except OSError:
        loaded[name] = False
print(json.dumps({"pygame": pygame.version.ver, "sdl": pygame.get_sdl_version(),
                  "lib": libs[0], "drivers": drivers, "loaded": loaded}))
"""


def test_pygame_ce_sdl_has_kmsdrm_and_its_libraries_load(arm64: Arm64Root) -> None:
    r = arm64.chroot(VENV_PYTHON, "-c", SDL_PROBE)
    assert r.returncode == 0, r.stdout + r.stderr
    probe = json.loads(r.stdout.strip().splitlines()[-1])
    print(f"\n[arm64 {arm64.suite}] pygame-ce {probe['pygame']}, SDL {probe['sdl']}: {probe}")
    assert "KMSDRM" in probe["drivers"], probe
    assert all(probe["loaded"].values()), probe["loaded"]


def _photos(folder: Path) -> list[str]:
    """The test photos (faces, a small face in a big frame, none), written in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    big = Image.new("RGB", (1280, 960), (90, 90, 90))
    big.paste(Image.fromarray(data.astronaut()).resize((256, 256)), (700, 220))
    images = {
        "astronaut.png": Image.fromarray(data.astronaut()),
        "astronaut-small-in-1280x960.png": big,
        "camera-gray.png": Image.fromarray(data.camera()),
        "coffee.png": Image.fromarray(data.coffee()),
        "chelsea.jpg": Image.fromarray(data.chelsea()),
    }
    for name, im in images.items():
        im.save(folder / name, quality=95) if name.endswith(".jpg") else im.save(folder / name)
    for frame in ("frame_00000.jpg", "frame_00020.jpg"):
        if (CLIP / frame).exists():
            shutil.copy2(CLIP / frame, folder / f"clip-{frame}")
    return sorted(p.name for p in folder.iterdir())


def _detect(cmd: list[str]) -> dict[str, list[dict]]:
    r = subprocess.run(
        cmd, capture_output=True, text=True, timeout=1800, check=False, env={"PATH": PATH}
    )
    assert r.returncode == 0, r.stdout + r.stderr
    records = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return {Path(rec["image"]).name: rec["faces"] for rec in records}


def _left(face: dict) -> float:
    return float(face["box"][0])


def _differences(want: dict[str, list[dict]], got: dict[str, list[dict]]) -> list[str]:
    problems = []
    assert set(want) == set(got)
    for image, faces in want.items():
        if len(faces) != len(got[image]):
            problems.append(f"{image}: {len(faces)} faces on x86, {len(got[image])} on arm64")
            continue
        pairs = zip(sorted(faces, key=_left), sorted(got[image], key=_left), strict=True)
        for a, b in pairs:
            if abs(a["score"] - b["score"]) > TOLERANCE_SCORE:
                problems.append(f"{image}: score {a['score']} vs {b['score']}")
            points = [*zip(a["box"][::2], a["box"][1::2], strict=True), *a["keypoints"]]
            other = [*zip(b["box"][::2], b["box"][1::2], strict=True), *b["keypoints"]]
            for (x0, y0), (x1, y1) in zip(points, other, strict=True):
                if max(abs(x0 - x1), abs(y0 - y1)) > TOLERANCE_PX:
                    problems.append(f"{image}: point ({x0}, {y0}) vs ({x1}, {y1})")
    return problems


@pytest.mark.parametrize("model", MODELS)
def test_detect_agrees_with_x86(arm64: Arm64Root, model: str, tmp_path: Path) -> None:
    names = _photos(arm64.root / PHOTOS_IN_ROOT.lstrip("/"))
    shutil.copytree(arm64.root / PHOTOS_IN_ROOT.lstrip("/"), tmp_path / "photos")
    here = _detect(
        [str(Path(sys.executable).parent / "monalisa"), "detect", "--json"]
        + ["--model", str(REPO / "models" / model)]
        + [str(tmp_path / "photos" / n) for n in names]
    )
    t0 = time.monotonic()
    there = _detect(
        arm64.argv("/usr/local/bin/monalisa", "detect", "--json")
        + ["--model", f"{arm64.models_dir}/{model}"]
        + [f"{PHOTOS_IN_ROOT}/{n}" for n in names]
    )
    arm64.timed(f"detect {model} ({len(names)} photos)", t0)
    # The comparison covers real faces (the short-range model misses the small ones).
    assert len(here["astronaut.png"]) == 1 and len(here["camera-gray.png"]) == 1, here
    assert here["coffee.png"] == []
    assert _differences(here, there) == []


def test_a_large_paintings_lossy_set_reads_the_same_on_arm64(arm64: Arm64Root) -> None:
    """A set written as a large painting's is (lossy WebP patches, alpha masks, a WebP
    preview), loaded and exported by the root's own Pillow and libwebp under qemu: every frame
    is the one this machine holds, and the pixels a frame does not change are the base's."""
    frames = [np.ascontiguousarray(data.astronaut()) for _ in range(5)]
    for i, f in enumerate(frames):
        f[190:240, 200:290] = data.astronaut()[190:240, 200 + 2 * (i - 2) : 290 + 2 * (i - 2)]
    inside = arm64.root / "srv/lossy"
    for old in (inside, arm64.root / "srv/lossy-out"):
        shutil.rmtree(old, ignore_errors=True)
    patches = [diff_patch(frames[2], f) for f in frames]
    write_set(inside, frames[2], patches, angles=None, rest_index=2, head_box=None, preview_max=256)
    assert {p.suffix for p in (inside / "patches").iterdir()} == {".webp"}
    t0 = time.monotonic()  # export loads the set as `frames check` does: every patch decoded
    r = arm64.chroot(
        "/usr/local/bin/monalisa", "frames", "export", "/srv/lossy", "--out", "/srv/lossy-out"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    arm64.timed("frames export of a lossy set", t0)
    here = FrameSet.load(inside)
    for i, f in enumerate(frames):
        there = np.asarray(Image.open(arm64.root / f"srv/lossy-out/frame_{i:02d}.png"))
        assert np.array_equal(there, here.frame(i)), f"frame {i}"
        same = (f == frames[2]).all(axis=2)
        assert np.array_equal(there[same], frames[2][same]), f"frame {i}"


# What `monalisa health` expects of a Pi, scaled to an emulated one: under qemu (on a shared
# x86 machine) one camera frame takes the detector seconds in band mode, not milliseconds,
# so a status file is seconds old between frames and the frame rate is far below 10.
HEALTH_UNDER_QEMU = """\
[health]
stale_after_s = 600
min_fps_warning = 0
"""


def _run_alone_and_check_health(arm64: Arm64Root) -> str:
    """The single level's stand-in for the unit: ``monalisa run`` as nobody, then health.

    No role made a unit or a service user there; the command line is the unit's options
    that matter here (the replay, the headless display); models and frames are found in
    ``/usr/share/monalisa`` without a config.
    """
    runtime = arm64.root / "run/monalisa"
    runtime.mkdir(parents=True, exist_ok=True)
    os.chown(runtime, 65534, 65534)
    run = ["run", "--camera", f"replay:{CLIP_IN_ROOT}", "--display", "headless"]
    run += ["--replay-speed", "max"]  # the frames: the default set, found without a config
    as_nobody = ["chroot", f"--userspec={NOBODY}", str(arm64.root), arm64_single.QEMU]
    proc = subprocess.Popen(
        [*as_nobody, *SINGLE_NAMES["/usr/local/bin/monalisa"], *run, "--duration", "1500"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": "/tmp"},
    )
    return check_health_while_tracking(
        proc,
        runtime / "status.json",
        arm64_single.FRAMES_DIR,
        1200,
        lambda: arm64.chroot(
            "/usr/local/bin/monalisa", "health", "--config", "/tmp/health-under-qemu.toml"
        ),
    )


def test_the_unit_runs_and_health_says_ok(arm64: Arm64Root) -> None:
    (arm64.root / "tmp/health-under-qemu.toml").write_text(HEALTH_UNDER_QEMU)
    t0 = time.monotonic()
    if arm64.level == SINGLE_LEVEL:
        health = _run_alone_and_check_health(arm64)
        arm64.timed("monalisa run (one qemu process) until health OK", t0)
        print(f"\n[arm64 {arm64.suite}] {health.strip()}")
        return
    health = start_the_unit_and_check_health(
        arm64.root,
        CLIP_IN_ROOT,
        "/opt/monalisa/frames",
        duration_s=1500,
        wait_s=1200,
        health_config="/tmp/health-under-qemu.toml",
        # Every frame of the 10-s clip, however slowly: in real time it would end after a few.
        extra_args=["--replay-speed", "max"],
    )
    arm64.timed("unit's ExecStart until health OK", t0)
    print(f"\n[arm64 {arm64.suite}] {health.strip()}")
