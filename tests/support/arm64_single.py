"""An arm64 root that needs no binfmt_misc: packages unpacked, wheels from the host, one qemu.

Where a machine cannot register qemu with ``binfmt_misc`` (a container without privileges),
an arm64 program cannot start another one in a chroot, so neither debootstrap's second stage,
apt, dpkg's scripts nor Ansible can run there. What still runs is one arm64 process at a time,
started by the host as ``chroot ROOT /usr/bin/qemu-aarch64-static PROGRAM``. This module builds
a root for that level:

1. ``debootstrap --foreign`` fetches the release's minbase packages plus what the appliance
   needs from apt (python3, apt's numpy, the libraries SDL's KMSDRM driver opens) and every
   package is unpacked on the host (``dpkg-deb``, no maintainer scripts);
2. what those scripts would have done and the appliance needs is done by hand: the BLAS and
   LAPACK links ``update-alternatives`` makes, and the loader cache (the root's own
   ``ldconfig``, run once under qemu);
3. the host's pip installs the appliance's wheel and its dependencies for the root's Python
   and ``aarch64`` (``--platform``, ``--python-version``) into the root's
   ``/usr/local/lib/python3.X/dist-packages``, with the role's constraints (apt's numpy kept,
   ``ml-dtypes<0.6`` with a numpy 1.x) and, as the role does, without pip's numpy;
4. the models and the default frame set go where the appliance finds them without a config
   (``/usr/share/monalisa``, as in the install by hand, docs/technician/install.md).

No Ansible runs at this level: the deploy's own checks need the binfmt level.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.unit_run import run_in

ARCHIVES = "var/cache/apt/archives"
"""Where debootstrap --foreign leaves the packages it fetched, inside the root."""

APT_PACKAGES = ["python3", "python3-numpy", "libdrm2", "libgbm1", "libegl1", "libgles2"]
"""What the appliance takes from apt at this level (the role's list, less what needs scripts)."""

QEMU = "/usr/bin/qemu-aarch64-static"
"""The emulator, copied into the root at the same path (chroot hides the host's)."""

MODELS_DIR = "/usr/share/monalisa/models"
"""Where the models go at this level: a place the appliance searches without a config."""
FRAMES_DIR = "/usr/share/monalisa/frames"
"""The default frame set's place, also searched without a config (no role writes one here)."""


def foreign_tarball(cache: Path, suite: str, mirror: str) -> Path:
    """The first stage of an arm64 minbase root with the appliance's apt packages fetched.

    Built once with ``debootstrap --foreign`` (no arm64 program runs) and cached as a tarball
    in ``cache``, like the other roots.
    """
    tarball = cache / f"debootstrap-{suite}-minbase-arm64-foreign.tar"
    if tarball.exists():
        return tarball
    cache.mkdir(parents=True, exist_ok=True)
    build = cache / f"build-foreign-{suite}"
    shutil.rmtree(build, ignore_errors=True)
    try:
        options = ["--foreign", "--variant=minbase", "--arch=arm64"]
        options.append(f"--include={','.join(APT_PACKAGES)}")
        r = subprocess.run(
            ["debootstrap", *options, suite, str(build), mirror],
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        if r.returncode != 0:
            raise RuntimeError(f"debootstrap --foreign {suite}: {r.stderr.strip()[-2000:]}")
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "-C", str(build), "-cf", str(partial), "."], check=True)
        partial.replace(tarball)
    finally:
        shutil.rmtree(build, ignore_errors=True)
    return tarball


def unpack_packages(root: Path) -> list[str]:
    """Unpack every fetched ``.deb`` into ``root`` as dpkg would, without its scripts.

    Directory symlinks of the merged ``/usr`` (``/lib -> usr/lib``) are kept, as dpkg keeps
    them. Returns the package file names unpacked.
    """
    names = []
    for deb in sorted((root / ARCHIVES).glob("*.deb")):
        data = subprocess.run(
            ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
        ).stdout
        subprocess.run(
            ["tar", "-x", "--keep-directory-symlink", "-C", str(root)], input=data, check=True
        )
        names.append(deb.name)
    return names


def link_alternatives(root: Path) -> list[str]:
    """Make the BLAS/LAPACK links ``update-alternatives`` would (numpy loads ``libblas.so.3``).

    Returns the links made, relative to ``root``.
    """
    made = []
    for lib in sorted((root / "usr/lib/aarch64-linux-gnu").glob("*/lib*.so.3")):
        if lib.parent.name not in ("blas", "lapack", "openblas-pthread", "atlas"):
            continue
        link = lib.parent.parent / lib.name
        if not link.exists():
            link.symlink_to(lib.relative_to(link.parent))
            made.append(str(link.relative_to(root)))
    return made


def python_version(root: Path) -> str:
    """The root's ``python3`` as ``3.X``, read from the ``/usr/bin/python3`` link."""
    target = (root / "usr/bin/python3").readlink().name  # python3.13
    return target.removeprefix("python")


def apt_numpy_version(root: Path) -> str:
    """The upstream version of the ``python3-numpy`` package fetched (``2.2.4``)."""
    (deb,) = (root / ARCHIVES).glob("python3-numpy_*_arm64.deb")
    version = subprocess.run(
        ["dpkg-deb", "--field", str(deb), "Version"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return version.split(":")[-1].split("-")[0].split("+")[0]


def in_root(root: Path, *cmd: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run one arm64 program in ``root`` under qemu (no binfmt needed), as root."""
    return run_in(root, QEMU, *cmd, timeout=timeout)


def install_wheels(root: Path, source: Path, work: Path) -> Path:
    """Install the appliance from ``source`` and its wheels into the root's Python, from here.

    Returns the site folder inside ``root``.
    """
    version = python_version(root)
    site = root / f"usr/local/lib/python{version}/dist-packages"
    site.mkdir(parents=True, exist_ok=True)
    numpy = apt_numpy_version(root)
    constraints = work / "constraints.txt"
    lines = [f"numpy=={numpy}"] + (["ml-dtypes<0.6"] if numpy.startswith("1.") else [])
    constraints.write_text("\n".join(lines) + "\n")
    wheels = work / "wheel"
    pip = [sys.executable, "-m", "pip"]
    subprocess.run(
        [*pip, "wheel", "--no-deps", "-q", "-w", str(wheels), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("monalisa-*.whl")
    target = ["--target", str(site), "--only-binary=:all:", "--implementation=cp"]
    target += [f"--platform=manylinux_2_{minor}_aarch64" for minor in range(17, 37)]
    target += [f"--python-version={version}", "-c", str(constraints)]
    r = subprocess.run(
        [*pip, "install", "-q", *target, str(wheel)],
        capture_output=True,
        text=True,
        check=False,
    )
    if r.returncode != 0:
        raise RuntimeError(f"pip --platform for python{version} aarch64: {r.stderr[-2000:]}")
    # As the role does: the numpy pip brought (a wheel of apt's version) goes; apt's stays.
    for path in [*site.glob("numpy"), *site.glob("numpy-*.dist-info"), *site.glob("numpy.libs")]:
        shutil.rmtree(path)
    shutil.rmtree(site / "bin", ignore_errors=True)  # scripts that name the host's python
    return site


def build(root: Path, tarball: Path, source: Path, work: Path) -> dict[str, object]:
    """Make ``root`` (empty) a single-process arm64 root from ``tarball`` and ``source``.

    Returns what was done, for the test's output: packages unpacked, links made, the site.
    """
    subprocess.run(["tar", "-C", str(root), "-xf", str(tarball)], check=True)
    packages = unpack_packages(root)
    links = link_alternatives(root)
    shutil.copy2(QEMU, root / QEMU.lstrip("/"))
    ldconfig = in_root(root, "/sbin/ldconfig")
    if ldconfig.returncode != 0:
        raise RuntimeError(f"ldconfig in {root}: {ldconfig.stderr.strip()[-500:]}")
    site = install_wheels(root, source, work)
    shutil.copytree(source / "models", root / MODELS_DIR.lstrip("/"))
    shutil.copytree(source / "frames", root / FRAMES_DIR.lstrip("/"))
    return {"packages": len(packages), "links": links, "site": "/" + str(site.relative_to(root))}
