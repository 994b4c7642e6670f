"""What the installed package holds: the demo clip as package data, nothing from ``tests/``."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from appliance.runner import DEMO_CLIP
from tests.support.run import REPO

PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps"]
"""Builds the wheel as an install would (in an isolated build environment: the venv's own
setuptools may be older than the one pyproject.toml's license field needs)."""


def test_the_demo_clip_is_package_data_not_read_from_tests():
    assert DEMO_CLIP.is_relative_to(REPO / "appliance")
    assert (DEMO_CLIP / "clip.toml").is_file()


def test_the_wheel_holds_the_demo_clip_and_no_test_code(tmp_path: Path):
    subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("monalisa-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    frames = sorted(p.name for p in DEMO_CLIP.iterdir())
    assert {f"appliance/data/demo/{name}" for name in frames} <= names
    assert not [n for n in names if n.startswith("tests/") or "faults" in n]
