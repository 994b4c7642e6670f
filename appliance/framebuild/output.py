"""Writing a frame set: the output folder, deterministic PNGs and ``frames.toml``.

A build is written into a temporary sibling folder and moved into place only once every file
is written (:func:`staging_dir`, :func:`commit_out_dir`): a failed rebuild leaves the old set
untouched. The set itself is written by :func:`appliance.framewrite.write_set` (same pixels in,
same bytes out); this module adds the folder handling and the frames' patches, computed over
the region that changes only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from appliance.framebuild import FrameBuildError
from appliance.frames import (
    BASE_NAME,
    MANIFEST_NAME,
    OLD_PREVIEW_NAME,
    PATCH_DIR,
    PREVIEW_NAME,
    Patch,
    diff_patch,
)

CONTACT_SHEET = "contact_sheet.png"
"""File name of the contact sheet inside a frame set folder."""


def is_build_output(name: str) -> bool:
    """True for a name a build owns: the v2 set's files and folder, the sheet, v1 frames."""
    owned = (MANIFEST_NAME, BASE_NAME, PREVIEW_NAME, OLD_PREVIEW_NAME, PATCH_DIR, CONTACT_SHEET)
    return name in owned or (name.startswith("frame_") and name.endswith(".png"))


def check_out_dir(out: Path, force: bool) -> None:
    """Refuse an unusable output folder before any slow work; changes nothing on disk.

    Raises:
        FrameBuildError: ``out`` is a file, or a non-empty folder without ``force``.
    """
    if out.exists() and not out.is_dir():
        raise FrameBuildError(f"--out {out}: exists and is not a folder")
    if out.is_dir() and not force:
        entries = sorted(p.name for p in out.iterdir())
        if entries:
            raise FrameBuildError(
                f"--out {out}: folder is not empty ({len(entries)} entries); "
                "choose an empty folder or add --force to replace a frame set in it"
            )


@contextlib.contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A fresh temporary sibling of ``out`` to build into: ``.NAME.building-`` + mkdtemp's suffix.

    It sits in the same parent folder, so :func:`commit_out_dir` only renames files. It is
    removed on leaving the block (after a commit it is already gone), so a failed build
    leaves ``out`` exactly as it was.

    Raises:
        OSError: The parent folder cannot be created or written.
    """
    target = out.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=target.parent))
    # mkdtemp makes the folder private (0700); a new set must be readable like any folder
    # made with mkdir (the service user reads it), so apply the umask's usual mode.
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit_out_dir(staged: Path, out: Path) -> None:
    """Replace the frame set in ``out`` with the files of ``staged`` (then empty and removed).

    A missing ``out`` is the renamed ``staged`` folder. Otherwise the old build outputs that
    the new set does not overwrite (see :func:`is_build_output`; the old ``patches/`` folder
    always) are removed, the new files are moved in with the manifest last, and every other
    file in ``out`` stays.

    Raises:
        OSError: A file cannot be removed or moved.
    """
    if not out.exists():
        staged.rename(out)
        return
    new = sorted(p.name for p in staged.iterdir())
    for p in out.iterdir():
        if is_build_output(p.name) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.name not in new and is_build_output(p.name) and p.is_file():
            p.unlink()
    for name in sorted(new, key=lambda n: n == MANIFEST_NAME):
        shutil.move(staged / name, out / name)
    staged.rmdir()


MANIFEST_DECIMALS = 4
"""Decimals a build writes its floats to ``frames.toml`` with (angles, the ``[build]`` table):
readable, and the same on every CPU whatever the models' last float bits."""


def rounded(value: Any) -> Any:
    """``value`` with every float in it rounded to :data:`MANIFEST_DECIMALS`.

    Numpy scalars become Python numbers; lists, tuples and dicts are followed (tuples become
    lists); ``-0.0`` becomes ``0.0``.
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        r = round(value, MANIFEST_DECIMALS)
        return r if r != 0 else 0.0
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    return value


def region_patch(base: np.ndarray, crop: np.ndarray, x0: int, y0: int) -> Patch:
    """The patch of a frame computed only over a region of the painting.

    Args:
        base: ``H×W×3`` uint8, the painting (the set's base image).
        crop: ``h×w×3`` uint8, the frame's pixels over the region whose top-left corner is
            ``(x0, y0)`` in ``base`` (the region lies inside ``base``).
        x0: Left edge of the region, pixels.
        y0: Top edge of the region, pixels.

    Returns:
        The smallest rectangle of ``crop`` that differs from ``base``, in painting pixels; an
        empty patch at (0, 0) where the frame equals the painting.
    """
    h, w = crop.shape[:2]
    p = diff_patch(base[y0 : y0 + h, x0 : x0 + w], crop)
    return p if p.empty else Patch(p.x0 + x0, p.y0 + y0, p.pixels)


def window(base: np.ndarray, patch: Patch, box: tuple[int, int, int, int]) -> np.ndarray:
    """One frame's pixels over ``box`` (``x0, y0, x1, y1``): the base there, the patch over it.

    Only the window is made, never the whole frame: its cost grows with ``box``, not with the
    painting.
    """
    x0, y0, x1, y1 = box
    out = base[y0:y1, x0:x1].copy()
    if patch.empty:
        return out
    px0, py0 = max(x0, patch.x0), max(y0, patch.y0)
    px1, py1 = min(x1, patch.x0 + patch.width), min(y1, patch.y0 + patch.height)
    if px0 < px1 and py0 < py1:
        rows = slice(py0 - patch.y0, py1 - patch.y0)
        cols = slice(px0 - patch.x0, px1 - patch.x0)
        part = patch.pixels[rows, cols]
        mask = None if patch.mask is None else patch.mask[rows, cols]
        Patch(px0, py0, part, mask).paste(out[py0 - y0 : py1 - y0, px0 - x0 : px1 - x0])
    return out
