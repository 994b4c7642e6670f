"""Fixtures shared by several test files (constants and helpers: :mod:`tests.support.run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.run import write_astronaut_clip


@pytest.fixture(scope="module")
def astronaut_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A looping 30-frame replay clip of the astronaut photo drifting sideways (320×240)."""
    return write_astronaut_clip(tmp_path_factory.mktemp("clip"))
