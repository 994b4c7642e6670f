"""Frame sets: the manifest ``frames.toml``, validation, and base image + per-frame patches.

A frame set is a folder of same-sized RGB images (one per gaze direction) plus ``frames.toml``::

    count = 33                       # number of frames (>= 2)
    size = [1024, 1526]              # width, height of every frame image, pixels
    rest_index = 16                  # the frame shown when nobody is there (default count // 2)
    head_box = [x0, y0, x1, y1]      # region of the painting that changes between frames, pixels
    [[frames]]                       # one table per frame, in index order
    file = "frame_00.png"
    angle = -30.0                    # gaze angle, degrees; negative = toward the visitor's left

``angle`` is optional, but all or nothing: either every ``[[frames]]`` table has one (strictly
increasing) or none does. A set without angles has :attr:`FrameSet.angles` ``None``; the
appliance then spreads the frames evenly over ``[gaze] angle_range_deg`` (see
:class:`appliance.gaze.Gaze`). The optional ``[build]`` table is kept as information and not
validated; any other key is refused. :class:`ManifestFile` is the format's one definition.

Memory: only the rest frame is kept whole (:attr:`FrameSet.base`); every frame is stored as a
:class:`Patch`, the bounding rectangle of the pixels where it differs from the base, which for
a portrait whose eyes move is a few hundred pixels across. 33 frames at 1920×1080 then cost
about one full frame plus a few small crops instead of 33 full frames.

Every problem raises :class:`FrameSetError` with one line naming the file and the key or value.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from PIL import Image
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from appliance.config import format_validation_error
from appliance.types import Box

MANIFEST_NAME = "frames.toml"
"""The manifest's file name inside a frame set folder."""

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
    """

    x0: int
    y0: int
    pixels: np.ndarray

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
    changed = np.any(frame != base, axis=2)
    rows = np.flatnonzero(changed.any(axis=1))
    if rows.size == 0:
        return Patch(0, 0, np.zeros((0, 0, 3), np.uint8))
    cols = np.flatnonzero(changed[rows[0] : rows[-1] + 1].any(axis=0))
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    x0, x1 = int(cols[0]), int(cols[-1]) + 1
    return Patch(x0, y0, np.ascontiguousarray(frame[y0:y1, x0:x1]))


def read_rgb(path: Path) -> np.ndarray:
    """Read an image file as ``H×W×3`` uint8 RGB.

    Raises:
        FrameSetError: The file is missing or cannot be decoded.
    """
    if not path.is_file():
        raise FrameSetError(f"{path}: missing image")
    try:
        with Image.open(path) as img:
            img.load()
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise FrameSetError(f"{path}: unreadable image ({err})") from err


@dataclass(frozen=True, slots=True)
class Manifest:
    """The validated contents of ``frames.toml``.

    Attributes:
        count: Number of frames, >= 2.
        size: ``(width, height)`` of every image, pixels.
        rest_index: Frame shown when nobody is there, ``0 <= rest_index < count``
            (``count // 2`` when the manifest has none).
        head_box: Region that changes between frames, pixels, inside the image.
        files: Image file names relative to the folder, in index order.
        angles: Gaze angle of each frame in degrees, strictly increasing, or None when the
            manifest gives no angles (the appliance spreads them evenly).
        build: The optional ``[build]`` table (how the set was made), as read.
    """

    count: int
    size: tuple[int, int]
    rest_index: int
    head_box: Box
    files: tuple[str, ...]
    angles: tuple[float, ...] | None
    build: dict[str, Any]


_Finite = Annotated[float, Field(strict=True, allow_inf_nan=False)]
_Int = Annotated[int, Field(strict=True)]


def _relative_name(name: str) -> str:
    if not name or Path(name).is_absolute() or ".." in name:
        raise PydanticCustomError("frames", "must be a relative name")
    return name


class FrameEntry(BaseModel):
    """One ``[[frames]]`` table: the image file and, optionally, its gaze angle in degrees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Annotated[str, Field(strict=True), AfterValidator(_relative_name)]
    angle: _Finite | None = None


class ManifestFile(BaseModel):
    """``frames.toml``, the one definition of the format (see the module docstring).

    Unknown keys are refused; ``[build]`` (how the set was made) is kept as read.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: _Int
    size: tuple[_Int, _Int]
    rest_index: _Int | None = None
    head_box: tuple[_Finite, _Finite, _Finite, _Finite]
    frames: list[FrameEntry]
    build: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> ManifestFile:
        count, (w, h) = self.count, self.size
        if count < 2:
            raise PydanticCustomError("frames", f"count = {count} must be at least 2")
        if w < 1 or h < 1:
            raise PydanticCustomError("frames", f"size = {[w, h]} must be positive")
        rest = self.rest_index if self.rest_index is not None else count // 2
        if not 0 <= rest < count:
            raise PydanticCustomError("frames", f"rest_index = {rest} out of range 0..{count - 1}")
        x0, y0, x1, y1 = self.head_box
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise PydanticCustomError(
                "frames",
                f"head_box = {list(self.head_box)} must satisfy 0 <= x0 < x1 <= {w} "
                f"and 0 <= y0 < y1 <= {h}",
            )
        if len(self.frames) != count:
            raise PydanticCustomError(
                "frames", f"count = {count} but there are {len(self.frames)} [[frames]] tables"
            )
        lacking = [i for i, entry in enumerate(self.frames) if entry.angle is None]
        if lacking and len(lacking) != count:
            raise PydanticCustomError(
                "frames",
                f"{count - len(lacking)} of {count} [[frames]] tables have an 'angle' "
                f"but frames[{lacking[0]}] has none; give every frame an angle or none",
            )
        for i in range(1, count if not lacking else 0):
            a, b = self.frames[i - 1].angle, self.frames[i].angle
            if a is not None and b is not None and b <= a:
                raise PydanticCustomError(
                    "frames",
                    f"frames[{i}].angle = {b} is not greater than frames[{i - 1}].angle = {a}; "
                    "angles must increase",
                )
        if len({entry.file for entry in self.frames}) != count:
            raise PydanticCustomError("frames", "frames list the same file twice")
        return self

    def manifest(self) -> Manifest:
        """The validated values, with the defaults applied (``rest_index``: ``count // 2``)."""
        angles = [entry.angle for entry in self.frames]
        return Manifest(
            count=self.count,
            size=self.size,
            rest_index=self.rest_index if self.rest_index is not None else self.count // 2,
            head_box=Box(*self.head_box),
            files=tuple(entry.file for entry in self.frames),
            angles=None if None in angles else tuple(float(a) for a in angles if a is not None),
            build=dict(self.build),
        )


def parse_manifest(path: Path) -> Manifest:
    """Read and validate a ``frames.toml`` on its own (without opening any image).

    Args:
        path: The manifest file.

    Raises:
        FrameSetError: The file is missing, not TOML, or a key is missing, unknown or out of
            range (one line naming the file, the key and the value).
    """
    if not path.is_file():
        raise FrameSetError(f"{path}: missing manifest")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise FrameSetError(f"{path}: cannot read manifest ({err})") from err
    try:
        return ManifestFile.model_validate(data).manifest()
    except ValidationError as err:
        raise FrameSetError(format_validation_error(str(path), data, err)[0]) from None


class FrameSet:
    """A validated frame set held as one base image plus per-frame patches.

    Attributes:
        directory: The folder it was loaded from.
        count: Number of frames (>= 2).
        size: ``(width, height)`` of every frame, pixels.
        rest_index: The frame shown when nobody is there.
        head_box: The region that changes between frames, pixels.
        angles: Gaze angle of each frame in degrees, strictly increasing; negative = toward
            the visitor's left. None when the manifest gives no angles: the appliance then
            spreads the frames evenly over ``[gaze] angle_range_deg``.
        files: Image file names in index order.
        build: The manifest's ``[build]`` table (how the set was made).
        base: ``H×W×3`` uint8 RGB, the rest frame.
        patches: Per frame, the region where it differs from :attr:`base`.
    """

    def __init__(
        self, directory: Path, manifest: Manifest, base: np.ndarray, patches: Sequence[Patch]
    ):
        self.directory = directory
        self.count = manifest.count
        self.size = manifest.size
        self.rest_index = manifest.rest_index
        self.head_box = manifest.head_box
        self.angles = manifest.angles
        self.files = manifest.files
        self.build = manifest.build
        self.base = base
        self.base.setflags(write=False)
        for p in patches:
            p.pixels.setflags(write=False)
        self.patches = tuple(patches)

    @classmethod
    def load(cls, directory: str | Path) -> FrameSet:
        """Load and validate the frame set in ``directory``.

        Checks: the manifest parses and its keys are in range; every image exists, decodes and
        has the manifest's size; every frame differs from the rest frame only inside
        ``head_box``. Only one full image (the base) is kept; at most two are decoded at once.

        Raises:
            FrameSetError: One line naming the file and the key or value at fault.
        """
        folder = Path(directory)
        if not folder.is_dir():
            raise FrameSetError(f"{folder}: frame set folder does not exist")
        manifest = parse_manifest(folder / MANIFEST_NAME)
        w, h = manifest.size

        def read(i: int) -> np.ndarray:
            path = folder / manifest.files[i]
            img = read_rgb(path)
            if img.shape[:2] != (h, w):
                raise FrameSetError(
                    f"{path}: image is {img.shape[1]}x{img.shape[0]} but "
                    f"{folder / MANIFEST_NAME} size = [{w}, {h}]"
                )
            return img

        base = read(manifest.rest_index)
        hb = manifest.head_box
        patches: list[Patch] = []
        for i in range(manifest.count):
            if i == manifest.rest_index:
                patches.append(Patch(0, 0, np.zeros((0, 0, 3), np.uint8)))
                continue
            patch = diff_patch(base, read(i))
            if not patch.empty:
                b = patch.box
                if (
                    b.x0 < math.floor(hb.x0)
                    or b.y0 < math.floor(hb.y0)
                    or (b.x1 > math.ceil(hb.x1) or b.y1 > math.ceil(hb.y1))
                ):
                    raise FrameSetError(
                        f"{folder / manifest.files[i]}: differs from the rest frame in "
                        f"{[int(v) for v in b.as_list()]}, outside head_box = "
                        f"{hb.as_list()} of {folder / MANIFEST_NAME}"
                    )
            patches.append(patch)
        return cls(folder, manifest, base, patches)

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
            out[p.y0 : p.y0 + p.height, p.x0 : p.x0 + p.width] = p.pixels
        return out

    def gaze_text(self) -> str:
        """One phrase for a summary line: the gaze range and the rest frame.

        E.g. ``"gaze -30.0° .. +30.0°, rest 16 (+0.0°)"``, or for a set without angles
        ``"gaze spread evenly over [gaze] angle_range_deg, rest 16"``.
        """
        a = self.angles
        if a is None:
            return f"gaze spread evenly over [gaze] angle_range_deg, rest {self.rest_index}"
        return (
            f"gaze {a[0]:+.1f}° .. {a[-1]:+.1f}°, rest {self.rest_index} "
            f"({a[self.rest_index]:+.1f}°)"
        )

    def memory_bytes(self) -> int:
        """Bytes of pixel data held: the base image plus every patch."""
        return int(self.base.nbytes + sum(p.pixels.nbytes for p in self.patches))

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
            "count": self.count,
            "size": list(self.size),
            "rest_index": self.rest_index,
            "head_box": self.head_box.as_list(),
            "angles": None if a is None else [round(v, 3) for v in a],
            "angle_range": None if a is None else [round(a[0], 3), round(a[-1], 3)],
            "patches": [[p.x0, p.y0, p.width, p.height] for p in self.patches],
            "memory_bytes": self.memory_bytes(),
            "full_frames_bytes": self.full_frames_bytes(),
            "build": self.build,
        }
