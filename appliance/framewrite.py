"""Writing a frame set: deterministic images, the manifest, :class:`PatchWriter`, :func:`write_set`.

The format written (version 2: ``base.png``, ``patches/``, the preview, ``frames.toml``) is
described in :mod:`appliance.frames`, which holds its model, file names and limits and reads
it; how the images are encoded (:data:`FAST_PNG`, :data:`PNG_COMPRESS_LEVEL`,
:data:`WEBP_METHOD`) is set here. :mod:`appliance.frameexport` writes a loaded set again: as
full frames, or as version 2. Same pixels in, same bytes out: no image carries metadata and
the manifest's keys are in a fixed order (written with tomli-w).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
from PIL import Image

from appliance.frames import (
    BASE_NAME,
    FORMAT_VERSION,
    MANIFEST_NAME,
    PATCH_DIR,
    PATCH_QUALITY,
    PREVIEW_MAX,
    PREVIEW_NAME,
    FrameSetError,
    Manifest,
    Patch,
    frame_name,
    validate_manifest,
)
from appliance.types import Box

WEBP_METHOD = 2
"""libwebp's effort (0 fast .. 6 slow) for what is written lossy: 7 ms a 14 Mpx painting's patch,
as fast as its PNG, for 5 % more bytes than the default effort 4 (6: 40x the time, 10 % less)."""

PNG_COMPRESS_LEVEL = 6
"""zlib level for every PNG written (fixed so output bytes do not depend on defaults)."""

FAST_PNG = {"compress_level": 1, "compress_type": 3}
"""How a set's PNG images (``base.png``, small paintings' patches) are compressed: zlib's fastest
level with its run-length strategy (``Z_RLE``). A 14 Mpx painting's base takes 0.8 s of CPU to
write instead of about 8 s at level 6, for about 10 % more bytes; its patches (656×161) 7.7 ms
each instead of 55 ms, for 5 % more (``benchmarks/framebuild.py``)."""


def write_png(path: Path, image: np.ndarray, fast: bool = False) -> None:
    """Write an ``H×W×3`` uint8 RGB array as a metadata-free PNG, deterministically.

    Same pixels in, same bytes out: no time, gamma or text chunk; zlib level
    :data:`PNG_COMPRESS_LEVEL`, or :data:`FAST_PNG` when ``fast`` (a full-size image).
    """
    options: dict[str, int] = dict(FAST_PNG) if fast else {"compress_level": PNG_COMPRESS_LEVEL}
    Image.fromarray(np.ascontiguousarray(image), "RGB").save(
        path, format="PNG", optimize=False, **options
    )


def _plain(value: Any) -> Any:
    """``value`` with numpy scalars, tuples and paths turned into what TOML can hold."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _boxes_union(boxes: Sequence[Box], size: tuple[int, int]) -> Box:
    """The smallest box holding ``boxes``; a 1×1 box at the centre of ``size`` when none."""
    if not boxes:
        w, h = size
        return Box(w // 2, h // 2, w // 2 + 1, h // 2 + 1)
    return Box(
        min(b.x0 for b in boxes),
        min(b.y0 for b in boxes),
        max(b.x1 for b in boxes),
        max(b.y1 for b in boxes),
    )


_Entry = tuple[str, Box] | None
"""A frame's patch file and box in a set being written; None for a frame equal to the base."""


def preview_size(size: tuple[int, int], preview_max: int = PREVIEW_MAX) -> tuple[int, int] | None:
    """``(width, height)`` of the preview of a base of ``size``; None when it needs none.

    A base larger than ``preview_max`` on its longest side has one, scaled to that side; its
    set's patches are then lossy (:data:`PATCH_QUALITY`).
    """
    w, h = size
    scale = min(1.0, preview_max / max(w, h))
    return (max(1, round(w * scale)), max(1, round(h * scale))) if scale < 1.0 else None


@dataclass(frozen=True)
class SetMeta:
    """A set's metadata beside its frames: what :meth:`PatchWriter.finish` writes.

    Attributes:
        angles: Per frame, its gaze angle in degrees (strictly increasing within each block
            of gazes), or None to let the appliance spread the gazes evenly.
        rest_index: The frame shown when nobody is there, ``0 <= rest_index < count``.
        head_box: The region that changes between frames, pixels, holding every patch; None
            for the smallest box that holds them (1×1 at the centre when there are none).
        build: How the set was made, written as the ``[build]`` table (numpy scalars and
            tuples allowed).
        pitches: Per frame, its vertical gaze in degrees (+ = up), or None for one level row.
        lids: Per frame, its lid phase (0 open .. 1 shut), or None for open eyes throughout.
            With ``pitches``, the frames must form the grid :mod:`appliance.frames` describes.
    """

    angles: Sequence[float] | None
    rest_index: int
    head_box: Box | None
    build: Mapping[str, Any] | None = None
    pitches: Sequence[float] | None = None
    lids: Sequence[float] | None = None


def _set_manifest(
    directory: Path,
    size: tuple[int, int],
    entries: Sequence[_Entry],
    meta: SetMeta,
    preview: tuple[int, int] | None,
) -> Manifest:
    """The validated manifest of a set (see :func:`write_set`)."""
    angles, pitches, lids = meta.angles, meta.pitches, meta.lids
    w, h = size
    count = len(entries)
    for name, values in (("angles", angles), ("pitches", pitches), ("lids", lids)):
        if values is not None and len(values) != count:
            raise FrameSetError(f"{directory}: {len(values)} {name} for {count} frames")
    boxes = [e[1] for e in entries if e is not None]
    hb = meta.head_box if meta.head_box is not None else _boxes_union(boxes, (w, h))
    frames: list[dict[str, Any]] = []
    for i, e in enumerate(entries):
        entry: dict[str, Any] = {}
        if angles is not None:
            entry["angle"] = float(angles[i])
        if pitches is not None:
            entry["pitch"] = float(pitches[i])
        if lids is not None:
            entry["lids"] = float(lids[i])
        if e is not None:
            entry["patch"] = e[0]
            entry["box"] = [int(v) for v in (e[1].x0, e[1].y0, e[1].x1, e[1].y1)]
        frames.append(entry)
    shown = {"preview": list(preview), "preview_file": PREVIEW_NAME} if preview else {}
    doc: dict[str, Any] = {
        "version": FORMAT_VERSION,
        "count": count,
        "size": [w, h],
        "rest_index": meta.rest_index,
        "head_box": [float(v) for v in hb.as_list(6)],
        **shown,
        "frames": frames,
        "build": _plain(dict(meta.build or {})),
    }
    return validate_manifest(doc, str(directory / MANIFEST_NAME))


def write_webp(path: Path, image: np.ndarray, mask: np.ndarray | None = None) -> None:
    """Write an ``H×W×3`` uint8 RGB array as a lossy WebP (:data:`PATCH_QUALITY`), metadata-free.

    Args:
        path: The file to write.
        image: The pixels.
        mask: ``H×W`` bool: kept exactly as the alpha channel (255 True, 0 False), the
            pixels where it is False left to the encoder. None: no alpha channel.
    """
    rgb = np.ascontiguousarray(image)
    img = Image.fromarray(rgb, "RGB")
    if mask is not None:
        img.putalpha(Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), "L"))
    img.save(path, format="WEBP", quality=PATCH_QUALITY, method=WEBP_METHOD, alpha_quality=100)


class PatchWriter:
    """Writes a version 2 set as its frames are made: each patch at once, the rest at the end.

    A builder making hundreds of large frames thus never holds their patches: each is
    written when added, once for frames with the same pixels in the same box (e.g. a shut
    blink at every gaze: they name the first one's file). A base larger than ``preview_max``
    gets lossy WebP patches (:data:`PATCH_QUALITY`) and a preview; a smaller one lossless PNG
    patches and none. :meth:`finish` validates the manifest and writes the base, the preview
    and, last, the manifest: a set cut short has no manifest and never loads. Same frames
    added in the same order, same bytes (PNGs carry no metadata; the manifest's keys are in a
    fixed order). :func:`write_set` writes a set whose patches are all at hand.

    Args:
        directory: The set's folder (created if missing; write into an empty one: files of an
            older set are not removed).
        count: Number of frames.
        base: ``H×W×3`` uint8 RGB, the painting every frame shares (not copied: leave it be
            until :meth:`finish`).
        preview_max: Longest side of the preview, pixels (>= 1).
        lossless: Lossless PNG patches even for a base with a preview.

    Raises:
        FrameSetError: ``base`` is not ``H×W×3`` uint8.
    """

    def __init__(
        self,
        directory: Path,
        count: int,
        base: np.ndarray,
        preview_max: int = PREVIEW_MAX,
        *,
        lossless: bool = False,
    ) -> None:
        if base.ndim != 3 or base.shape[2] != 3 or base.dtype != np.uint8:
            raise FrameSetError(
                f"{directory}: base must be H×W×3 uint8, not {base.shape} {base.dtype}"
            )
        self.directory = directory
        self.base = base
        self.preview = preview_size((base.shape[1], base.shape[0]), preview_max)
        self.lossless = lossless
        self._entries: list[_Entry] = [None] * count
        self._names: dict[tuple[Any, ...], str] = {}

    @property
    def lossy(self) -> bool:
        """True when the patches are written as lossy WebP (a base with a preview)."""
        return self.preview is not None and not self.lossless

    def add(self, i: int, patch: Patch) -> None:
        """Frame ``i``'s patch (:data:`EMPTY_PATCH` for a frame equal to the base), written now.

        Raises:
            OSError: The file cannot be written.
        """
        if patch.empty:
            self._entries[i] = None
            return
        b = patch.box
        under = self.base[b.y0 : b.y1, b.x0 : b.x1]
        p = patch.solid(under)
        key = (p.x0, p.y0, p.width, p.height, hashlib.sha256(p.pixels.tobytes()).digest())
        name = f"{PATCH_DIR}/{Path(frame_name(i, len(self._entries))).stem}"
        name += ".webp" if self.lossy else ".png"
        first = self._names.setdefault(key, name)
        if first == name:
            (self.directory / PATCH_DIR).mkdir(parents=True, exist_ok=True)
            if self.lossy:
                write_webp(self.directory / name, p.pixels, (p.pixels != under).any(axis=2))
            else:
                write_png(self.directory / name, p.pixels, fast=True)
        self._entries[i] = (first, p.box)

    @property
    def box(self) -> Box | None:
        """The smallest box holding every patch added so far, or None for none."""
        boxes = [e[1] for e in self._entries if e is not None]
        return _boxes_union(boxes, (1, 1)) if boxes else None

    def finish(self, meta: SetMeta) -> None:
        """Write the rest of the set: the base, the preview and the manifest with ``meta``.

        Raises:
            FrameSetError: The inputs do not make a valid set (the message names the key).
            OSError: A file cannot be written.
        """
        base, folder = self.base, self.directory
        size = (base.shape[1], base.shape[0])
        manifest = _set_manifest(folder, size, self._entries, meta, self.preview)
        folder.mkdir(parents=True, exist_ok=True)
        write_png(folder / BASE_NAME, base, fast=True)
        if self.preview is not None:
            # Halved by box averaging first while still over twice the size (Pillow's
            # reducing_gap): about a third less CPU than Lanczos on the full base, no visible
            # difference.
            small = Image.fromarray(np.ascontiguousarray(base), "RGB").resize(
                self.preview, Image.Resampling.LANCZOS, reducing_gap=2.0
            )
            write_webp(folder / PREVIEW_NAME, np.asarray(small))
        text = tomli_w.dumps(manifest.model_dump(mode="json", exclude_unset=True))
        header = "# Frame set for the monalisa appliance (format: appliance/frames.py).\n"
        (folder / MANIFEST_NAME).write_bytes((header + text).encode("utf-8"))


def write_set(
    directory: Path,
    base: np.ndarray,
    patches: Sequence[Patch],
    *,
    angles: Sequence[float] | None,
    rest_index: int,
    head_box: Box | None,
    build: Mapping[str, Any] | None = None,
    preview_max: int = PREVIEW_MAX,
    pitches: Sequence[float] | None = None,
    lids: Sequence[float] | None = None,
    lossless: bool = False,
) -> None:
    """Write a version 2 frame set into ``directory`` (created if missing), as :class:`PatchWriter`.

    The manifest is validated before any file is written, so a set this writes always loads.

    Args:
        directory: The set's folder.
        base: ``H×W×3`` uint8 RGB, the painting every frame shares.
        patches: Per frame, in index order, its region that differs from ``base``
            (:data:`EMPTY_PATCH` for a frame equal to it; a masked one is laid on ``base``);
            at least two frames.
        angles: As :class:`SetMeta`'s.
        rest_index: As :class:`SetMeta`'s, ``< len(patches)``.
        head_box: As :class:`SetMeta`'s.
        build: As :class:`SetMeta`'s.
        preview_max: Longest side of the preview, pixels (>= 1); a larger base has one and
            lossy patches.
        pitches: As :class:`SetMeta`'s.
        lids: As :class:`SetMeta`'s.
        lossless: Lossless PNG patches even for a base with a preview (the frames exactly
            as given).

    Raises:
        FrameSetError: The inputs do not make a valid set (the message names the key).
        OSError: A file cannot be written.
    """
    writer = PatchWriter(directory, len(patches), base, preview_max, lossless=lossless)
    entries = [None if p.empty else (f"{PATCH_DIR}/{i}", p.box) for i, p in enumerate(patches)]
    meta = SetMeta(angles, rest_index, head_box, build, pitches, lids)
    size = (base.shape[1], base.shape[0])
    _set_manifest(directory, size, entries, meta, writer.preview)  # checked first
    for i, p in enumerate(patches):
        writer.add(i, p)
    writer.finish(meta)
