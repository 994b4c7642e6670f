"""Frame sets: the format (the manifest ``frames.toml``, base image + per-frame patches), reading.

A frame set is a folder holding the portrait as the appliance holds it in memory: one base
image plus, per frame (one per gaze, row and lid phase), the small rectangle where that frame
differs from it. Format version 2, written by :func:`appliance.framewrite.write_set`::

    base.png                         # the painting, full size (every frame shares it)
    patches/frame_000.png            # per frame that differs from the base: its region
    patches/frame_000.webp           # (a large painting's: lossy, its alpha the changed pixels)
    preview.webp                     # the base scaled to at most 1920 px (large paintings only)
    frames.toml:
        version = 2
        count = 660                  # frames (>= 2): gazes x rows x lid phases
        size = [3072, 4578]          # width, height of base.png and of every frame, pixels
        rest_index = 280             # the frame shown when nobody is there (default count // 2)
        head_box = [x0, y0, x1, y1]  # region of the painting that changes between frames, pixels
        preview = [1289, 1920]       # width, height of the preview (absent: no preview)
        preview_file = "preview.webp"  # its file (absent: preview.png, as sets before 2026-12)
        [[frames]]                   # one table per frame, in index order
        angle = -30.0                # gaze angle, degrees; negative = toward the visitor's left
        patch = "patches/frame_000.png"  # frames with equal pixels may share one (and its box)
        box = [x0, y0, x1, y1]       # where the patch goes, integer pixels, x1/y1 exclusive
        pitch = 0.0                  # optional: vertical gaze, degrees, + = up (default 0)
        lids = 0.0                   # optional: blink phase, 0 open .. 1 shut (default 0)
        [build]                      # optional: how the set was made (information only)

The frames form a grid addressed by (gaze, row, lid phase): frames in index order run through
the gazes fastest (angles increasing), then the lid phases (``lids`` increasing), then the rows
(``pitch`` increasing), so frame ``(row * phases + lid) * gazes + gaze``. Every block of
``gazes`` consecutive frames shares one ``pitch`` and one ``lids`` and repeats the same angles;
every row has the same lid phases. A set with neither key is one row of open eyes (``gazes``
= ``count``), the layout before vertical gaze and blinks.

A frame without ``patch``/``box`` equals the base. A patch image with an alpha channel covers
only its opaque pixels (alpha >= 128); elsewhere in its box the frame is the base. The builder
writes a large painting's patches so (:data:`PATCH_QUALITY`): a lossy WebP image of the pixels
that change, its alpha (kept exactly) marking them, so every pixel a frame does not change is
the base's, exactly. Version 1 (no ``version`` key) is the older
layout: one full image per frame (``file = "frame_00.png"`` instead of ``patch``/``box``); the
rest frame is the base and the patches are found by comparing each frame with it, which decodes
every full image (slow for a large painting: ``monalisa frames convert OLD NEW`` writes v2).

``angle`` is optional, but all or nothing: either every ``[[frames]]`` table has one (strictly
increasing within each block of gazes) or none does. A set without angles has
:attr:`FrameSet.angles` ``None``; the appliance then spreads the gazes evenly over
``[gaze] angle_range_deg`` (see
:class:`appliance.gaze.Gaze`).

One pydantic model, :class:`Manifest`, reads both versions (unknown keys refused). Every
problem raises :class:`FrameSetError` with one line naming the file and the key or value.

Writing a set is :mod:`appliance.framewrite`'s (:func:`~appliance.framewrite.write_set`,
:class:`~appliance.framewrite.PatchWriter`); exporting one as full frames and converting it to
version 2 (``monalisa frames export`` and ``convert``), :mod:`appliance.frameexport`'s. Both
import from this module, never the reverse.
"""

from __future__ import annotations

import hashlib
import math
import struct
import tomllib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, overload

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from appliance.config import format_validation_error, key_path
from appliance.types import Box
from appliance.worker import in_background

MANIFEST_NAME = "frames.toml"
"""The manifest's file name inside a frame set folder."""

BASE_NAME = "base.png"
"""The base image's file name inside a version 2 frame set folder."""

PREVIEW_NAME = "preview.webp"
"""The base scaled down, for a fast first start (a version 2 set of a large painting): the file
:func:`~appliance.framewrite.write_set` writes, named by the manifest's ``preview_file``."""

OLD_PREVIEW_NAME = "preview.png"
"""The preview's file in a set whose manifest has no ``preview_file`` (written before 2026-12)."""

PATCH_QUALITY = 90
"""WebP quality (0..100) of a large painting's patches and of its preview.

A set whose painting is larger than :data:`PREVIEW_MAX` (one that has a preview, and is shown
scaled down on any screen up to 4K) keeps each patch as a lossy WebP image of the pixels that
change, its alpha channel (lossless) marking them; every other pixel stays the base's exactly.
A 14 Mpx painting-like scan's 495 patch files then take 3 MB instead of 67 MB as PNG; the
changed pixels keep 42 dB PSNR at full size, and scaled to a full-HD screen they are off by at
most 4 grey levels in 999 of 1000 (``benchmarks/framebuild.py``). Smaller paintings, shown at
or above their own size, keep lossless PNG patches."""

PREVIEW_MAX = 1920
"""Longest side of the preview, pixels: a full-HD screen, also turned on its side, shows
the portrait from it at full sharpness. A base no larger than this has no preview."""

PATCH_DIR = "patches"
"""The folder of a version 2 set's patch images, inside the set's folder."""

FORMAT_VERSION = 2
"""The manifest version :func:`~appliance.framewrite.write_set` writes."""

MAX_IMAGE_PIXELS = 200_000_000
"""Largest image the builder and the appliance decode, pixels (200 Mpx, 600 MB as RGB). It
replaces Pillow's decompression-bomb guard (a warning above 89 Mpx, an error above 179 Mpx,
which would refuse a museum scan): :func:`open_image` refuses a larger image with one line
naming the file, its size and this limit, before any pixel is decoded."""

SYSTEM_FRAMES_DIR = Path("/usr/share/monalisa/frames")
"""Where a packaged install keeps the default set when the repository's ``frames/`` is absent."""


class FrameSetError(ValueError):
    """A frame set that cannot be used; the message is one line naming the file and key."""


@dataclass(frozen=True, slots=True)
class Patch:
    """The region of one frame that differs from the base image.

    Attributes:
        x0: Left edge of the region in frame pixels.
        y0: Top edge of the region in frame pixels.
        pixels: ``h×w×3`` uint8 RGB pixels of the frame in that region (``0×0×3`` when the
            frame equals the base).
        mask: ``h×w`` bool, True where ``pixels`` are the frame's; elsewhere the frame is the
            base (and ``pixels`` hold whatever the patch file had there). None: every pixel.
    """

    x0: int
    y0: int
    pixels: np.ndarray
    mask: np.ndarray | None = None

    @property
    def width(self) -> int:
        """Width of the region in pixels."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Height of the region in pixels."""
        return int(self.pixels.shape[0])

    @property
    def box(self) -> Box:
        """The region as a :class:`Box` (``x1``, ``y1`` exclusive)."""
        return Box(self.x0, self.y0, self.x0 + self.width, self.y0 + self.height)

    @property
    def empty(self) -> bool:
        """True when the frame is identical to the base."""
        return self.pixels.size == 0

    def paste(self, region: np.ndarray) -> None:
        """Lay the patch on ``region``, the base's pixels under its box (``h×w×3``, changed).

        Where :attr:`mask` is False the region is left as it is.
        """
        if self.mask is None:
            region[...] = self.pixels
        else:
            np.copyto(region, self.pixels, where=self.mask[..., None])

    def solid(self, under: np.ndarray) -> Patch:
        """This patch without a mask: the base's pixels ``under`` its box where it has none."""
        if self.mask is None:
            return self
        pixels = np.array(under, dtype=np.uint8, copy=True)
        self.paste(pixels)
        return Patch(self.x0, self.y0, pixels)


EMPTY_PATCH = Patch(0, 0, np.zeros((0, 0, 3), np.uint8))
"""The patch of a frame identical to the base."""


def default_frames_dir() -> Path:
    """Return the default frame set folder.

    The repository's ``frames/`` next to the ``appliance`` package when there is one (a
    clone), else :data:`SYSTEM_FRAMES_DIR`, where an installed package looks (the README's
    by-hand install copies the set there). A missing set is then reported under the name the
    installer can act on, not a path inside site-packages.
    """
    repo = Path(__file__).resolve().parent.parent / "frames"
    if (repo / MANIFEST_NAME).is_file():
        return repo
    if SYSTEM_FRAMES_DIR.is_dir() or not repo.is_dir():
        return SYSTEM_FRAMES_DIR
    return repo


def diff_patch(base: np.ndarray, frame: np.ndarray) -> Patch:
    """Return the bounding region where ``frame`` differs from ``base`` as a :class:`Patch`.

    Args:
        base: ``H×W×3`` uint8 image.
        frame: ``H×W×3`` uint8 image of the same shape.

    Returns:
        The smallest rectangle holding every differing pixel (its pixels copied from
        ``frame``), or an empty patch at (0, 0) when the images are equal.
    """
    # Channel by channel: many times faster than any() over the short last axis.
    changed = (frame[..., 0] != base[..., 0]) | (frame[..., 1] != base[..., 1])
    changed |= frame[..., 2] != base[..., 2]
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return EMPTY_PATCH
    cols = np.flatnonzero(changed[rows[0] : rows[-1] + 1].any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    return Patch(x0, y0, frame[y0:y1, x0:x1].copy())  # a copy: never a view of a whole frame


class ImageTooLargeError(FrameSetError):
    """An image larger than :data:`MAX_IMAGE_PIXELS`; the message names the file and both sizes."""


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """Open an image file lazily (nothing decoded yet), refusing one over :data:`MAX_IMAGE_PIXELS`.

    Every image the builder and the appliance decode is opened here, so the limit is the same
    for both. Pillow's own guard is switched off process-wide (``Image.MAX_IMAGE_PIXELS =
    None``: the same value from every thread, so no race) since this check stands in for it.

    Raises:
        ImageTooLargeError: More than :data:`MAX_IMAGE_PIXELS` pixels (read from the header).
        OSError: The file is missing or not an image Pillow knows (as ``Image.open``).
    """
    Image.MAX_IMAGE_PIXELS = None
    with Image.open(path) as img:
        w, h = img.size
        if w * h > MAX_IMAGE_PIXELS:
            raise ImageTooLargeError(
                f"{path}: {w}x{h} is {w * h / 1e6:.0f} Mpx, more than the limit of "
                f"{MAX_IMAGE_PIXELS / 1e6:.0f} Mpx; scale the scan down (the eyes need no more)"
            )
        yield img


def decode_rgb(path: Path, alpha: bool = False) -> Image.Image:
    """Decode an image file as an RGB PIL image (the decoder's one copy, 4 bytes a pixel).

    With ``alpha``, an image that has an alpha channel (or a transparent colour) is decoded
    as RGBA instead.

    Raises:
        FrameSetError: The file is missing, cannot be decoded, or is larger than
            :data:`MAX_IMAGE_PIXELS` (:class:`ImageTooLargeError`).
    """
    if not path.is_file():
        raise FrameSetError(f"{path}: missing image")
    try:
        with open_image(path) as img:
            img.load()  # leaving the block closes the file, not the decoded image
            if alpha and (img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info):
                return img if img.mode == "RGBA" else img.convert("RGBA")
            return img if img.mode == "RGB" else img.convert("RGB")
    except ImageTooLargeError:
        raise
    except (OSError, ValueError) as err:
        raise FrameSetError(f"{path}: unreadable image ({err})") from err


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``H×W×3`` uint8 RGB (read-only).

    Raises:
        FrameSetError: As :func:`decode_rgb`.
    """
    return np.asarray(decode_rgb(path), dtype=np.uint8)


def frame_name(i: int, count: int) -> str:
    """File name of frame ``i``: ``frame_00.png`` (zero-padded to at least two digits)."""
    width = max(2, len(str(count - 1)))
    return f"frame_{i:0{width}d}.png"


# -- the manifest ---------------------------------------------------------------------------------


def _error(message: str) -> PydanticCustomError:
    return PydanticCustomError("frame_set", message)


def _relative_name(name: str) -> str:
    if not name or Path(name).is_absolute() or ".." in Path(name).parts or "\\" in name:
        raise _error("must be a relative file name inside the set's folder")
    return name


_Finite = Annotated[float, Field(allow_inf_nan=False)]


class FrameEntry(BaseModel):
    """One ``[[frames]]`` table: the frame's image and its gaze.

    Version 1 names a full image (``file``); version 2 a patch and its box, or neither when
    the frame equals the base. ``pitch`` and ``lids`` place the frame in the grid of rows and
    lid phases (see the module's text).
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    file: str | None = Field(None, description="v1: the frame's full image, relative name.")
    patch: str | None = Field(None, description="v2: the frame's patch image, relative name.")
    box: Annotated[list[int], Field(min_length=4, max_length=4)] | None = Field(
        None, description="v2: where the patch goes, [x0, y0, x1, y1] pixels, x1/y1 exclusive."
    )
    angle: _Finite | None = Field(None, description="Gaze angle, degrees; negative = left.")
    pitch: _Finite = Field(0.0, description="v2: vertical gaze, degrees; + = up.")
    lids: Annotated[float, Field(ge=0.0, le=1.0)] = Field(
        0.0, description="v2: blink phase, 0 = open .. 1 = shut."
    )

    @field_validator("file", "patch")
    @classmethod
    def _names(cls, value: str | None) -> str | None:
        return None if value is None else _relative_name(value)


class Manifest(BaseModel):
    """``frames.toml``, version 1 or 2 (see the module's text); unknown keys are refused.

    Validation stops at the first check that fails; every message names the key and value.
    """

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    version: Literal[1, 2] = Field(1, description="Format version; absent means 1.")
    count: Annotated[int, Field(ge=2)] = Field(description="Number of frames.")
    size: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)] = Field(
        description="[width, height] of every frame, pixels."
    )
    rest_index: int | None = Field(None, description="Frame shown when nobody is there.")
    head_box: Annotated[list[_Finite], Field(min_length=4, max_length=4)] = Field(
        description="[x0, y0, x1, y1]: the region that changes between frames, pixels."
    )
    preview: (
        Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=2, max_length=2)] | None
    ) = Field(None, description="v2: [width, height] of the preview, the base scaled down.")
    preview_file: str = Field(
        OLD_PREVIEW_NAME, description="v2: the preview's file, relative name (with preview)."
    )
    frames: list[FrameEntry] = Field(description="One table per frame, in index order.")
    build: dict[str, Any] = Field(
        default_factory=dict, description="How the set was made (information only)."
    )

    @field_validator("preview_file")
    @classmethod
    def _preview_name(cls, value: str) -> str:
        return _relative_name(value)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        count, frames = self.count, self.frames
        w, h = self.size
        if len(frames) != count:
            raise _error(f"count = {count} but there are {len(frames)} [[frames]] tables")
        rest = self.rest
        if not 0 <= rest < count:
            raise _error(f"rest_index = {rest} out of range 0..{count - 1}")
        x0, y0, x1, y1 = self.head_box
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise _error(
                f"head_box = {self.head_box} must satisfy 0 <= x0 < x1 <= {w} "
                f"and 0 <= y0 < y1 <= {h}"
            )
        lacking = [i for i, f in enumerate(frames) if f.angle is None]
        if lacking and len(lacking) != count:
            raise _error(
                f"{count - len(lacking)} of {count} [[frames]] tables have an 'angle' but "
                f"frames[{lacking[0]}] has none; give every frame an angle or none"
            )
        self._check_grid()
        gazes = self.gazes
        for i in range(1, count if not lacking else 0):
            if i % gazes == 0:
                a, b = frames[i - gazes].angle, frames[i].angle
                if a != b:
                    raise _error(
                        f"frames[{i}].angle = {b} differs from frames[{i - gazes}].angle = {a}; "
                        "every row and lid phase repeats the same angles"
                    )
                continue
            a, b = frames[i - 1].angle, frames[i].angle
            assert a is not None and b is not None
            if b <= a:
                raise _error(
                    f"frames[{i}].angle = {b} is not greater than frames[{i - 1}].angle = {a}; "
                    "angles must increase"
                )
        if self.preview is not None:
            if self.version == 1:
                raise _error("preview is a version 2 key; add version = 2")
            if self.preview[0] > w or self.preview[1] > h:
                raise _error(f"preview = {self.preview} must not be larger than size = {self.size}")
        elif "preview_file" in self.model_fields_set:
            raise _error("preview_file names the preview; give its size as preview = [w, h]")
        for i, f in enumerate(frames):
            self._check_entry(i, f)
        if self.version == 1:
            names = [n for n in self.files if n]
            if len(set(names)) != len(names):
                raise _error("frames list the same file twice")
            return self
        # v2: frames with the same pixels may share one patch file, and then its box.
        boxes: dict[str, list[int]] = {}
        for i, f in enumerate(frames):
            if f.patch is not None and f.box is not None:
                first = boxes.setdefault(f.patch, f.box)
                if first != f.box:
                    raise _error(
                        f"frames[{i}].patch = {f.patch!r} is an earlier frame's, whose box is "
                        f"{first}, not {f.box}; frames sharing a patch share its box"
                    )
        return self

    def _check_entry(self, i: int, f: FrameEntry) -> None:
        if self.version == 1:
            for key in ("patch", "box", "pitch", "lids"):
                if key in f.model_fields_set:
                    raise _error(f"frames[{i}].{key} is a version 2 key; add version = 2")
            if f.file is None:
                raise _error(f"frames[{i}] needs a 'file'")
            return
        if f.file is not None:
            raise _error(f"frames[{i}].file is a version 1 key; version 2 gives patch and box")
        if (f.patch is None) != (f.box is None):
            raise _error(f"frames[{i}] needs both 'patch' and 'box', or neither")
        if f.box is None:
            return
        bx0, by0, bx1, by1 = f.box
        hx0, hy0, hx1, hy1 = self.head_box
        if not (0 <= bx0 < bx1 <= self.size[0] and 0 <= by0 < by1 <= self.size[1]):
            raise _error(f"frames[{i}].box = {f.box} must lie inside size = {self.size}")
        if bx0 < math.floor(hx0) or by0 < math.floor(hy0) or bx1 > math.ceil(hx1):
            raise _error(f"frames[{i}].box = {f.box} is outside head_box = {self.head_box}")
        if by1 > math.ceil(hy1):
            raise _error(f"frames[{i}].box = {f.box} is outside head_box = {self.head_box}")

    def _check_grid(self) -> None:
        """Check that the frames' ``pitch`` and ``lids`` form the grid the module describes."""
        frames = self.frames
        keys = [(f.pitch, f.lids) for f in frames]
        gazes = self.gazes
        if gazes < 2:
            raise _error(
                f"frames[1] has pitch = {keys[1][0]}, lids = {keys[1][1]} unlike frames[0]; "
                "each row and lid phase needs at least 2 gazes"
            )
        if len(frames) % gazes:
            raise _error(
                f"count = {len(frames)} is not a whole number of blocks of {gazes} gazes "
                "(the frames before the first change of pitch or lids)"
            )
        pitches, phases = self.pitches, self.lid_phases
        if len(pitches) * len(phases) != len(frames) // gazes:
            raise _error(
                f"{len(pitches)} pitches x {len(phases)} lid phases do not make "
                f"{len(frames) // gazes} blocks of {gazes} gazes; give every row every lid phase"
            )
        for i, key in enumerate(keys):
            block = i // gazes
            want = (pitches[block // len(phases)], phases[block % len(phases)])
            if key != want:
                raise _error(
                    f"frames[{i}] has pitch = {key[0]}, lids = {key[1]} but its place in the "
                    f"grid wants pitch = {want[0]}, lids = {want[1]}: gazes first, then lid "
                    "phases, then rows, each increasing"
                )

    @property
    def gazes(self) -> int:
        """Horizontal gazes per row and lid phase: frames before the first change of either."""
        first = (self.frames[0].pitch, self.frames[0].lids)
        for i, f in enumerate(self.frames):
            if (f.pitch, f.lids) != first:
                return i
        return len(self.frames)

    @property
    def grid_fields(self) -> dict[str, list[float] | None]:
        """Per frame, ``angles``, ``pitches`` and ``lids`` as the writer takes them.

        The keyword arguments of :func:`~appliance.framewrite.write_set` of the same names.
        """
        frames = self.frames
        angles = None if self.angles is None else [f.angle or 0.0 for f in frames]
        return {
            "angles": angles,
            "pitches": [f.pitch for f in frames],
            "lids": [f.lids for f in frames],
        }

    @property
    def pitches(self) -> tuple[float, ...]:
        """The rows' vertical gazes, degrees, increasing (``(0.0,)`` for a set of one row)."""
        return tuple(sorted({f.pitch for f in self.frames}))

    @property
    def lid_phases(self) -> tuple[float, ...]:
        """The lid phases, 0 open .. 1 shut, increasing (``(0.0,)`` for a set without blinks)."""
        return tuple(sorted({f.lids for f in self.frames}))

    def index(self, gaze: int, row: int = 0, lid: int = 0) -> int:
        """The frame index of ``(gaze, row, lid phase)``, each counted from 0.

        Raises:
            IndexError: One of them is out of range.
        """
        if not (
            0 <= gaze < self.gazes
            and 0 <= row < len(self.pitches)
            and 0 <= lid < len(self.lid_phases)
        ):
            raise IndexError(f"frame (gaze {gaze}, row {row}, lid {lid}) is outside the grid")
        return (row * len(self.lid_phases) + lid) * self.gazes + gaze

    def place(self, i: int) -> tuple[int, int, int]:
        """``(gaze, row, lid phase)`` of frame ``i``, each counted from 0 (:meth:`index` undone).

        Raises:
            IndexError: ``i`` is not a frame of the set.
        """
        if not 0 <= i < self.count:
            raise IndexError(f"frame {i} is outside 0..{self.count - 1}")
        block, gaze = divmod(i, self.gazes)
        row, lid = divmod(block, len(self.lid_phases))
        return gaze, row, lid

    @property
    def rest_gaze(self) -> int:
        """The gaze index of the rest frame."""
        return self.rest % self.gazes

    @property
    def rest_row(self) -> int:
        """The row of the rest frame (the one shown when nobody is there)."""
        return self.rest // (self.gazes * len(self.lid_phases))

    @property
    def rest(self) -> int:
        """The rest frame's index: ``rest_index``, or ``count // 2`` when absent."""
        return self.count // 2 if self.rest_index is None else self.rest_index

    @property
    def angles(self) -> tuple[float, ...] | None:
        """The gazes' angles in degrees (one per gaze, not per frame), or None when none given."""
        if any(f.angle is None for f in self.frames):
            return None
        return tuple(float(f.angle) for f in self.frames[: self.gazes] if f.angle is not None)

    @property
    def files(self) -> tuple[str, ...]:
        """Per frame, the image it reads: v1 its full image, v2 its patch ("" for none)."""
        return tuple(f.file or f.patch or "" for f in self.frames)

    @property
    def box(self) -> Box:
        """``head_box`` as a :class:`Box`."""
        return Box(*self.head_box)


def validate_manifest(data: Any, source: str) -> Manifest:
    """Validate parsed ``frames.toml`` data.

    Args:
        data: The parsed TOML document.
        source: The file name to start the error line with.

    Raises:
        FrameSetError: One line naming the file and the key and value at fault (a missing
            key as ``missing key 'count'``).
    """
    try:
        return Manifest.model_validate(data)
    except ValidationError as err:
        missing = [e for e in err.errors() if e.get("type") == "missing"]
        if missing:
            loc = tuple(missing[0].get("loc", ()))
            raise FrameSetError(f"{source}: missing key {key_path(loc)!r}") from None
        lines = format_validation_error(source, data, err)
        more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
        raise FrameSetError(lines[0] + more) from None


def parse_manifest(path: Path) -> Manifest:
    """Read and validate a ``frames.toml`` on its own (without opening any image).

    Args:
        path: The manifest file.

    Raises:
        FrameSetError: The file is missing, not TOML, or a key is unknown, missing or out of
            range.
    """
    if not path.is_file():
        raise FrameSetError(f"{path}: missing manifest")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise FrameSetError(f"{path}: cannot read manifest ({err})") from err
    return validate_manifest(data, str(path))


# -- reading a set --------------------------------------------------------------------------------


def open_manifest(directory: str | Path) -> tuple[Path, Manifest]:
    """Check that ``directory`` is a folder and read its validated manifest.

    Raises:
        FrameSetError: The folder or its manifest is missing or invalid.
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise FrameSetError(f"{folder}: frame set folder does not exist")
    return folder, parse_manifest(folder / MANIFEST_NAME)


def _read_sized(folder: Path, name: str, size: tuple[int, int], what: str) -> np.ndarray:
    return np.asarray(_decode_sized(folder, name, size, what), dtype=np.uint8)


def _decode_sized(
    folder: Path, name: str, size: tuple[int, int], what: str, alpha: bool = False
) -> Image.Image:
    path = folder / name
    img = decode_rgb(path, alpha)
    if img.size != size:
        raise FrameSetError(
            f"{path}: image is {img.width}x{img.height} but "
            f"{folder / MANIFEST_NAME} {what} = [{size[0]}, {size[1]}]"
        )
    return img


def read_base(folder: Path, manifest: Manifest) -> np.ndarray:
    """Decode the set's base image: v2 ``base.png``, v1 the rest frame's image.

    Raises:
        FrameSetError: The image is missing, unreadable or not ``size``.
    """
    return np.asarray(decode_base(folder, manifest), dtype=np.uint8)


def decode_base(folder: Path, manifest: Manifest) -> Image.Image:
    """:func:`read_base` as the decoded RGB PIL image (no array copy of a large base).

    Raises:
        FrameSetError: The image is missing, unreadable or not ``size``.
    """
    size = (manifest.size[0], manifest.size[1])
    name = manifest.files[manifest.rest] if manifest.version == 1 else BASE_NAME
    return _decode_sized(folder, name, size, "size")


def read_preview(folder: Path, manifest: Manifest) -> np.ndarray | None:
    """Decode the set's preview (None when the manifest has no ``preview``).

    Raises:
        FrameSetError: The image is missing, unreadable or not ``preview`` in size.
    """
    if manifest.preview is None:
        return None
    size = (manifest.preview[0], manifest.preview[1])
    return _read_sized(folder, manifest.preview_file, size, "preview")


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image file from its header, nothing decoded.

    A PNG's size is read from its first 24 bytes (signature and ``IHDR``), an extended WebP's
    (``VP8X``, as every WebP with alpha) from its first 30; any other file is opened lazily
    with Pillow (:func:`open_image`).

    Raises:
        FrameSetError: The file is missing or not an image.
    """
    try:
        with path.open("rb") as f:
            head = f.read(30)
    except OSError as err:
        raise FrameSetError(f"{path}: missing image ({err.strerror})") from None
    if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 24:
        w, h = struct.unpack(">II", head[16:24])
        return int(w), int(h)
    if head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and len(head) == 30:
        # The canvas's width and height minus one, 24-bit little-endian (RFC 9649, 2.7).
        w = int.from_bytes(head[24:27], "little") + 1
        return w, int.from_bytes(head[27:30], "little") + 1
    try:
        with open_image(path) as img:
            return img.size
    except ImageTooLargeError:
        raise
    except (OSError, ValueError) as err:
        raise FrameSetError(f"{path}: unreadable image ({err})") from err


class PatchFiles(Sequence[Patch]):
    """A version 2 set's patches, each decoded from its file when asked for (none kept).

    Opening checks every patch file's header against its box (:func:`image_size`) and decodes
    the rest frame's patch, which is kept; any other item is decoded anew on each access, so
    the full-size patches of a large grid are never all in memory at once.

    Args:
        folder: The set's folder.
        manifest: Its validated version 2 manifest.

    Raises:
        FrameSetError: A patch file is missing, not an image or not its box's size, or the
            rest frame's patch cannot be decoded (one line naming the file).
    """

    def __init__(self, folder: Path, manifest: Manifest) -> None:
        self.folder = folder
        self.manifest = manifest
        for i, entry in enumerate(manifest.frames):
            if entry.patch is not None and entry.box is not None:
                x0, y0, x1, y1 = entry.box
                path = folder / entry.patch
                w, h = image_size(path)
                if (w, h) != (x1 - x0, y1 - y0):
                    raise FrameSetError(
                        f"{path}: image is {w}x{h} but {folder / MANIFEST_NAME} "
                        f"frames[{i}].box size = [{x1 - x0}, {y1 - y0}]"
                    )
        self._rest = self.read(manifest.rest)

    def file(self, i: int) -> Path | None:
        """The patch file of frame ``i``; None when the frame equals the base."""
        name = self.manifest.frames[i].patch
        return None if name is None else self.folder / name

    def read(self, i: int) -> Patch:
        """Decode frame ``i``'s patch now.

        Raises:
            FrameSetError: Its file is missing, unreadable or not its box's size.
        """
        entry = self.manifest.frames[i]
        if entry.patch is None or entry.box is None:
            return EMPTY_PATCH
        x0, y0, x1, y1 = entry.box
        img = _decode_sized(
            self.folder, entry.patch, (x1 - x0, y1 - y0), f"frames[{i}].box size", alpha=True
        )
        if img.mode == "RGB":
            return Patch(x0, y0, np.asarray(img, dtype=np.uint8))
        rgba = np.asarray(img, dtype=np.uint8)
        mask = rgba[..., 3] >= 128
        return Patch(x0, y0, np.ascontiguousarray(rgba[..., :3]), None if mask.all() else mask)

    def __len__(self) -> int:
        return self.manifest.count

    @overload
    def __getitem__(self, i: int) -> Patch: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Patch]: ...

    def __getitem__(self, i: int | slice) -> Patch | Sequence[Patch]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        j = range(len(self))[i]
        return self._rest if j == self.manifest.rest else self.read(j)


def read_patches(folder: Path, manifest: Manifest, base: np.ndarray | None = None) -> list[Patch]:
    """Read every frame's patch, in index order.

    Version 2 decodes the small patch images, a file several frames name once (they share
    the :class:`Patch`); version 1 decodes each full frame (one at a time) and keeps where it
    differs from ``base``, which must then lie inside ``head_box``.

    Args:
        folder: The set's folder.
        manifest: Its validated manifest.
        base: The base image from :func:`read_base`; needed for version 1 only.

    Raises:
        FrameSetError: A patch or frame image is missing, unreadable, the wrong size, or (v1)
            differs from the rest frame outside ``head_box``.
    """
    if manifest.version == 2:
        files = PatchFiles(folder, manifest)
        by_name: dict[str, Patch] = {}  # a file several frames name: decoded once, shared
        out: list[Patch] = []
        for i, entry in enumerate(manifest.frames):
            if entry.patch is None:
                out.append(files[i])
            else:
                if entry.patch not in by_name:
                    by_name[entry.patch] = files[i]
                out.append(by_name[entry.patch])
        return out
    patches: list[Patch] = []
    if base is None:
        raise ValueError("read_patches: a version 1 set needs its base image")
    size = (manifest.size[0], manifest.size[1])
    hb = manifest.box
    for i, name in enumerate(manifest.files):
        if i == manifest.rest:
            patches.append(EMPTY_PATCH)
            continue
        patch = diff_patch(base, _read_sized(folder, name, size, "size"))
        b = patch.box
        if not patch.empty and (
            b.x0 < math.floor(hb.x0)
            or b.y0 < math.floor(hb.y0)
            or (b.x1 > math.ceil(hb.x1) or b.y1 > math.ceil(hb.y1))
        ):
            raise FrameSetError(
                f"{folder / name}: differs from the rest frame in "
                f"{[int(v) for v in b.as_list()]}, outside head_box = "
                f"{hb.as_list()} of {folder / MANIFEST_NAME}"
            )
        patches.append(patch)
    return patches


class _ManifestFields:
    """The fields :class:`FrameSet` and :class:`Portrait` copy from their manifest once, alike.

    Attributes are those the subclasses' docstrings name: ``manifest``, ``count``, ``size``,
    ``rest_index``, ``head_box``, ``angles`` and ``grid``.
    """

    def __init__(self, manifest: Manifest) -> None:
        self.manifest = manifest
        self.count = manifest.count
        self.size = (manifest.size[0], manifest.size[1])
        self.rest_index = manifest.rest
        self.head_box = manifest.box
        self.angles = manifest.angles
        self.grid = manifest


class FrameSet(_ManifestFields):
    """A validated frame set held as one base image plus per-frame patches.

    Attributes:
        directory: The folder it was loaded from.
        version: The manifest's format version, 1 (full frames) or 2 (base + patches).
        count: Number of frames (>= 2).
        size: ``(width, height)`` of every frame, pixels.
        rest_index: The frame shown when nobody is there.
        head_box: The region that changes between frames, pixels.
        angles: Angle of each gaze (one per gaze, not per frame) in degrees, strictly
            increasing; negative = toward the visitor's left. None when the manifest gives no
            angles: the appliance then spreads the gazes evenly over ``[gaze] angle_range_deg``.
        grid: The manifest, which addresses frames by (gaze, row, lid phase):
            :meth:`Manifest.index`, ``gazes``, ``pitches``, ``lid_phases``, ``rest_gaze``.
        manifest: The validated manifest (per-frame fields such as ``pitch`` and ``lids``).
        build: The manifest's ``[build]`` table (how the set was made).
        base: ``H×W×3`` uint8 RGB, the painting every frame shares (for a set the builder
            wrote, the rest frame; in general the rest frame is ``frame(rest_index)``).
        patches: Per frame, the region where it differs from :attr:`base`.
    """

    def __init__(
        self, directory: Path, manifest: Manifest, base: np.ndarray, patches: Sequence[Patch]
    ):
        super().__init__(manifest)
        self.directory = directory
        self.version = manifest.version
        self.build = manifest.build
        self.base = base
        self.base.setflags(write=False)
        for p in patches:
            p.pixels.setflags(write=False)
        self.patches = tuple(patches)

    @classmethod
    def load(cls, directory: str | Path) -> FrameSet:
        """Load and validate the frame set in ``directory`` (version 1 or 2).

        Checks: the manifest parses and its keys are in range; every image exists, decodes and
        has the manifest's size (a v2 patch: its box's size); every frame differs from the
        base only inside ``head_box``. Only one full image (the base) is kept; at most two
        are decoded at once.

        Raises:
            FrameSetError: One line naming the file and the key or value at fault.
        """
        folder, manifest = open_manifest(directory)
        base = read_base(folder, manifest)
        read_preview(folder, manifest)  # checked, not kept
        return cls(folder, manifest, base, read_patches(folder, manifest, base))

    def frame(self, i: int) -> np.ndarray:
        """Return frame ``i`` as a new ``H×W×3`` uint8 RGB array.

        Raises:
            IndexError: ``i`` is outside ``0..count-1``.
        """
        if not 0 <= i < self.count:
            raise IndexError(f"frame index {i} out of range 0..{self.count - 1}")
        out = self.base.copy()
        p = self.patches[i]
        if not p.empty:
            p.paste(out[p.y0 : p.y0 + p.height, p.x0 : p.x0 + p.width])
        return out

    def gaze_text(self) -> str:
        """One phrase for a summary line: the gaze range and the rest frame.

        E.g. ``"gaze -30.0° .. +30.0°, rest 16 (+0.0°)"``, or for a set without angles
        ``"gaze spread evenly over [gaze] angle_range_deg, rest 16"``.
        """
        a, g = self.angles, self.grid
        p, lids = g.pitches, len(g.lid_phases)
        grid = ""
        if len(p) > 1 or lids > 1:
            grid = (
                f", {g.gazes} gazes x {len(p)} rows ({p[0]:+.1f}° .. {p[-1]:+.1f}°) "
                f"x {lids} lid phases"
            )
        if a is None:
            return f"gaze spread evenly over [gaze] angle_range_deg, rest {self.rest_index}{grid}"
        return (
            f"gaze {a[0]:+.1f}° .. {a[-1]:+.1f}°, rest {self.rest_index} "
            f"({a[g.rest_gaze]:+.1f}°){grid}"
        )

    def memory_bytes(self) -> int:
        """Bytes of pixel data held: the base image plus every patch (a shared one once)."""
        held = {id(p.pixels): p.pixels.nbytes for p in self.patches}
        return int(self.base.nbytes + sum(held.values()))

    def full_frames_bytes(self) -> int:
        """Bytes that ``count`` full RGB frames would take (for comparison)."""
        return int(self.base.nbytes * self.count)

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description: size, count, angles, head box, patch sizes, memory.

        ``angles`` and ``angle_range`` are None for a set without angles.
        """
        a = self.angles
        return {
            "directory": str(self.directory),
            "version": self.version,
            "count": self.count,
            "size": list(self.size),
            "rest_index": self.rest_index,
            "head_box": self.head_box.as_list(),
            "angles": None if a is None else [round(v, 3) for v in a],
            "angle_range": None if a is None else [round(a[0], 3), round(a[-1], 3)],
            "gazes": self.grid.gazes,
            "pitches": list(self.grid.pitches),
            "lid_phases": list(self.grid.lid_phases),
            "patches": [[p.x0, p.y0, p.width, p.height] for p in self.patches],
            "memory_bytes": self.memory_bytes(),
            "full_frames_bytes": self.full_frames_bytes(),
            "build": self.build,
        }


# -- a set opened for showing ---------------------------------------------------------------------


class Portrait(_ManifestFields):
    """A frame set opened for the screen: manifest and rest patch read, the rest on demand.

    Opening a version 2 set reads the manifest, every patch file's header (its size against its
    box) and the rest frame's patch only, so it takes the same time whatever the painting's
    size and however many frames the grid has; the other patches are decoded when rendered
    (:class:`PatchFiles`, after READY in the display's worker), and :meth:`read_base` decodes
    the full base image when it is needed (the display first looks in its cache of the base
    scaled to the screen, see :mod:`appliance.display.prepare`). A version 1 set is loaded
    whole (:meth:`FrameSet.load`): it has no patches on disk. A set whose manifest, rest patch
    or any patch file's header is wrong is refused before anything is shown; a patch whose
    pixels turn out unreadable later costs that frame only (``monalisa frames check`` decodes
    every one).

    Attributes:
        directory: The folder it was opened from (None for one made from a loaded set).
        manifest: The validated manifest.
        count: Number of frames (>= 2).
        size: ``(width, height)`` of the painting and every frame, pixels.
        rest_index: The frame shown when nobody is there.
        head_box: The region that changes between frames, pixels.
        angles: Angle of each gaze in degrees, or None (see :class:`FrameSet`).
        grid: The manifest, which addresses frames by (gaze, row, lid phase).
        patches: Per frame, where it differs from the base (full-size pixels); for a version 2
            set opened from a folder a :class:`PatchFiles`, which decodes on each access and
            may then raise :class:`FrameSetError`.
        key: A hex digest naming this content: the manifest's bytes and, per image file, its
            name, size and modification time (any rewrite changes it); None when the set was
            not opened from a folder.
    """

    def __init__(
        self,
        directory: Path | None,
        manifest: Manifest,
        patches: Sequence[Patch],
        *,
        base: np.ndarray | None = None,
        key: str | None = None,
    ) -> None:
        super().__init__(manifest)
        self.directory = directory
        self.patches = patches
        self.key = key
        self._base = base
        self._prefetch: Future[Image.Image] | None = None

    @classmethod
    def open(cls, directory: str | Path) -> Portrait:
        """Open the set in ``directory`` for showing (see the class docstring).

        Raises:
            FrameSetError: One line naming the file and the key or value at fault.
        """
        folder, manifest = open_manifest(directory)
        if manifest.version == 1:
            fs = FrameSet.load(folder)
            return cls(folder, manifest, fs.patches, base=fs.base, key=None)
        names = [MANIFEST_NAME, BASE_NAME, *(f.patch for f in manifest.frames if f.patch)]
        if manifest.preview is not None:
            names.append(manifest.preview_file)
        digest = hashlib.sha256()
        for name in names:
            try:
                st = (folder / name).stat()
            except OSError as err:
                raise FrameSetError(f"{folder / name}: missing image ({err.strerror})") from None
            digest.update(f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        digest.update((folder / MANIFEST_NAME).read_bytes())
        return cls(folder, manifest, PatchFiles(folder, manifest), key=digest.hexdigest())

    @classmethod
    def of(cls, frames: FrameSet) -> Portrait:
        """A portrait of an already loaded set (its base kept; no cache key)."""
        return cls(None, frames.manifest, frames.patches, base=frames.base)

    @property
    def base_loaded(self) -> bool:
        """True when the full base image is in memory (:meth:`read_base` is then instant)."""
        return self._base is not None

    def prefetch_base(self) -> None:
        """Start decoding the base image in a background thread; :meth:`read_base` waits for it.

        So the decode (PNG decoding runs outside the GIL) overlaps the rest of start-up: the
        model, the camera, the screen. The thread is a daemon: a stop during start-up does not
        wait for it. Does nothing when the base is held or already being decoded.
        """
        if self._base is not None or self._prefetch is not None or self.directory is None:
            return
        folder, manifest = self.directory, self.manifest
        self._prefetch = in_background("monalisa-base", lambda: decode_base(folder, manifest))

    def read_preview(self) -> np.ndarray | None:
        """The set's preview (the base scaled down), decoded now; None when it has none.

        Raises:
            FrameSetError: The preview is missing, unreadable or the wrong size.
        """
        if self.directory is None or self._base is not None:
            return None
        return read_preview(self.directory, self.manifest)

    def read_base(self) -> np.ndarray:
        """The full base image, ``H×W×3`` uint8 RGB (decoded now unless held or prefetched).

        A decoded image is not kept: the caller keeps what it needs of it.

        Raises:
            FrameSetError: The base image is missing, unreadable or not the manifest's size.
        """
        if self._base is not None:
            return self._base
        return np.asarray(self.decode_base(), dtype=np.uint8)

    def decode_base(self) -> Image.Image:
        """:meth:`read_base` as an RGB PIL image: a large base without an array copy of it.

        Raises:
            FrameSetError: The base image is missing, unreadable or not the manifest's size.
        """
        if self._base is not None:
            return Image.fromarray(self._base, "RGB")
        if self._prefetch is not None:
            future, self._prefetch = self._prefetch, None
            return future.result()
        assert self.directory is not None
        return decode_base(self.directory, self.manifest)
