"""Fixtures shared by several test files (constants and helpers: :mod:`tests.support.run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.run import write_astronaut_clip


@pytest.fixture(scope="module")
def astronaut_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A looping 30-frame replay clip of the astronaut photo drifting sideways (320×240)."""
    return write_astronaut_clip(tmp_path_factory.mktemp("clip"))


@pytest.fixture(scope="session")
def small_grid_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The astronaut photo built as a small default grid (3 gazes x 5 rows x 4 lid phases,
    ``frames build --count 3``) and exported (``frames export``): (set folder, export folder).

    Shared by the export tests of ``test_frames`` and ``test_framebuild_living``: building and
    exporting takes seconds. Read it, do not change it.
    """
    import numpy as np
    from PIL import Image
    from skimage import data

    from appliance.cli import main

    root = tmp_path_factory.mktemp("small-grid")
    painting = root / "astronaut.png"
    Image.fromarray(np.ascontiguousarray(data.astronaut())).save(painting)
    built, out = root / "set", root / "export"
    args = ["frames", "build", str(painting), "--out", str(built), "--count", "3"]
    assert main([*args, "--eyes", "203,101,246,103"]) == 0
    assert main(["frames", "export", str(built), "--out", str(out)]) == 0
    return built, out
