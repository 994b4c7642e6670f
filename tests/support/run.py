"""What tests share to run the appliance and the tools they drive, and the repository's place."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from appliance.camera import ClipFile

REPO = Path(__file__).resolve().parents[2]
"""The repository (a clone: models/, frames/, deploy/, tests/data/)."""

MONALISA = [sys.executable, "-m", "appliance.cli"]
"""The ``monalisa`` command, run by this interpreter (it ignores ``MONALISA_FAULT``)."""

MONALISA_WITH_FAULTS = [
    sys.executable,
    "-c",
    "import sys; from tests.support.faults import main; sys.exit(main())",
]
"""``monalisa`` with the faults of ``$MONALISA_FAULT`` (:mod:`tests.support.faults`); needs the
repository on ``PYTHONPATH``, as :func:`app_env` sets it."""


def monalisa_for(env: dict[str, str]) -> list[str]:
    """:data:`MONALISA_WITH_FAULTS` if ``env`` asks for a fault, else :data:`MONALISA`."""
    return MONALISA_WITH_FAULTS if env.get("MONALISA_FAULT") else MONALISA


def app_env(**extra: str) -> dict[str, str]:
    """This process' environment for a child appliance: no systemd socket, no fault, no screen.

    ``NOTIFY_SOCKET`` and ``MONALISA_FAULT`` are removed (the test sets its own), SDL's video
    driver is ``dummy``, the repository goes first on ``PYTHONPATH`` (for
    :data:`MONALISA_WITH_FAULTS`), then ``extra`` is applied.
    """
    e = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "MONALISA_FAULT")}
    e["SDL_VIDEODRIVER"] = "dummy"
    e["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), e.get("PYTHONPATH")) if p)
    e.update(extra)
    return e


def install_debs(*names: str) -> None:
    """Install the Debian packages among ``names`` that are missing (as root, with apt-get).

    The suite's own system packages come from ``make sysdeps``; this is for what only one
    slow test needs (``debootstrap``, ``qemu-user-static``, ``binfmt-support``).

    Raises:
        subprocess.CalledProcessError: apt-get failed (no root, no mirror).
    """
    missing = [
        p for p in names if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode
    ]
    if missing:
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing],
            check=True,
            env=env,
        )


def write_astronaut_clip(directory: Path, n: int = 30, *, loop: bool = True) -> Path:
    """``n`` PNG frames (the astronaut photo, 320x240, drifting sideways) and clip.toml (30 fps)."""
    from PIL import Image
    from skimage import data

    directory.mkdir(parents=True, exist_ok=True)
    photo = np.asarray(Image.fromarray(data.astronaut()).resize((240, 240)))
    for i in range(n):
        canvas = np.full((240, 320, 3), 90, np.uint8)
        x = 20 + (i * 2) % 60
        canvas[:, x : x + 240] = photo
        Image.fromarray(canvas).save(directory / f"frame_{i:04d}.png")
    ClipFile(fps=30.0, loop=loop).write(directory)
    return directory
