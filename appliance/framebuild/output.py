"""Writing a frame set: the output folder, deterministic PNGs and ``frames.toml``.

A build is written into a temporary sibling folder and moved into place only once every file
is written (:func:`staging_dir`, :func:`commit_out_dir`): a failed rebuild leaves the old set
untouched. Same pixels in → same bytes out: PNGs carry no metadata (no time, no gamma chunk,
no text) and are compressed at a fixed level; the manifest is written field by field in a
fixed order with fixed float formatting, and never holds a time stamp or an absolute path.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from appliance.config import toml_value
from appliance.framebuild import FrameBuildError
from appliance.frames import MANIFEST_NAME
from appliance.types import Box

PNG_COMPRESS_LEVEL = 6
"""zlib level for every PNG written (fixed so output bytes do not depend on defaults)."""


CONTACT_SHEET = "contact_sheet.png"
"""File name of the contact sheet inside a frame set folder."""


def is_build_output(name: str) -> bool:
    """True for a file name that a build owns: ``frame_*.png``, ``frames.toml``, the sheet."""
    return name in (MANIFEST_NAME, CONTACT_SHEET) or (
        name.startswith("frame_") and name.endswith(".png")
    )


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
    the new set does not overwrite (see :func:`is_build_output`) are removed, the new files
    are moved in with the manifest last, and every other file in ``out`` stays.

    Raises:
        OSError: A file cannot be removed or moved.
    """
    if not out.exists():
        staged.rename(out)
        return
    new = sorted(p.name for p in staged.iterdir())
    for p in out.iterdir():
        if p.name not in new and is_build_output(p.name) and p.is_file():
            p.unlink()
    for name in sorted(new, key=lambda n: n == MANIFEST_NAME):
        shutil.move(staged / name, out / name)
    staged.rmdir()


def write_png(path: Path, image: np.ndarray) -> None:
    """Write an ``H×W×3`` uint8 RGB array as a metadata-free PNG, deterministically."""
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(
        path, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False
    )


def frame_name(i: int, count: int) -> str:
    """File name of frame ``i``: ``frame_00.png`` (zero-padded to at least two digits)."""
    width = max(2, len(str(count - 1)))
    return f"frame_{i:0{width}d}.png"


def _toml_value(v: Any) -> str:
    """``v`` as :func:`~appliance.config.toml_value` writes it, floats to 4 decimals."""
    return toml_value(_rounded(v))


def _rounded(v: Any) -> Any:
    """``v`` with numpy scalars as Python ones and floats to 4 decimals (lists item by item)."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, list | tuple):
        return [_rounded(x) for x in v]
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v!r} to TOML")
        r = round(v, 4)
        return float(r) if r != 0 else 0.0
    return v


def manifest_text(
    *,
    size: tuple[int, int],
    rest_index: int,
    head_box: Box,
    files: Sequence[str],
    angles: Sequence[float],
    build: Mapping[str, Any],
) -> str:
    """Return the ``frames.toml`` text (keys in a fixed order, floats to 4 decimals)."""
    lines = [
        "# Frame set for the monalisa appliance; written by `monalisa frames build`.",
        f"count = {len(files)}",
        f"size = {_toml_value(list(size))}",
        f"rest_index = {rest_index}",
        f"head_box = {_toml_value([round(v) for v in head_box.as_list()])}",
        "",
    ]
    for name, angle in zip(files, angles, strict=True):
        lines += ["[[frames]]", f"file = {_toml_value(name)}", f"angle = {_toml_value(angle)}", ""]
    lines.append("[build]")
    for key, value in build.items():
        lines.append(f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


def write_manifest(out: Path, text: str) -> None:
    """Write ``frames.toml`` into ``out`` (UTF-8, LF line ends)."""
    (out / MANIFEST_NAME).write_bytes(text.encode("utf-8"))


def changed_box(base: np.ndarray, frames: Sequence[np.ndarray], pad: int = 0) -> Box:
    """The bounding box of every pixel where any frame differs from ``base``, padded by ``pad``.

    Returns a 1×1 box at the image centre when nothing changes.
    """
    h, w = base.shape[:2]
    changed = np.zeros((h, w), bool)
    for f in frames:
        changed |= np.any(f != base, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    cols = np.flatnonzero(changed.any(axis=0))
    if rows.size == 0:
        return Box(w // 2, h // 2, w // 2 + 1, h // 2 + 1)
    return Box(
        max(0, int(cols[0]) - pad),
        max(0, int(rows[0]) - pad),
        min(w, int(cols[-1]) + 1 + pad),
        min(h, int(rows[-1]) + 1 + pad),
    )
