"""Exporting and converting a frame set: every frame as a full image, or the set as version 2.

``monalisa frames export`` (:func:`export_set`, its index ``frames.json`` one pydantic model,
:class:`ExportIndex`) and ``monalisa frames convert`` (:func:`convert_set`). The sets are read
by :mod:`appliance.frames` and written by :mod:`appliance.framewrite`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from appliance.frames import FrameSet, frame_name
from appliance.framewrite import write_png, write_set

EXPORT_INDEX = "frames.json"
"""The index file :func:`export_set` writes next to the full frames."""


class ExportedFrame(BaseModel):
    """One frame in ``frames.json``: its full image and every per-frame field of the manifest.

    ``box`` and ``patch`` are the v2 patch's place and file in the source set (None when the
    frame equals the base, and for a v1 set).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: str = Field(description="The exported full image, relative to frames.json.")
    index: int = Field(description="Frame index, 0 = toward the visitor's left.")
    angle: float | None = Field(description="Gaze angle, degrees, or None (spread evenly).")
    pitch: float = Field(description="Vertical gaze, degrees; + = up.")
    lids: float = Field(description="Blink phase, 0 open .. 1 shut.")
    gaze: int = Field(description="The frame's gaze index (0 = toward the visitor's left).")
    row: int = Field(description="The frame's row, 0 = lowest pitch.")
    lid: int = Field(description="The frame's lid phase index, 0 = open.")
    box: list[int] | None = Field(description="v2: the patch's [x0, y0, x1, y1] in pixels.")
    patch: str | None = Field(description="v2: the patch file in the source set.")
    rest: bool = Field(description="True for the rest frame (shown when nobody is there).")


class ExportIndex(BaseModel):
    """``frames.json``, written by ``monalisa frames export``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(description="The exported set's folder.")
    version: int = Field(description="The source manifest's format version.")
    size: list[int] = Field(description="[width, height] of every frame, pixels.")
    rest_index: int = Field(description="The rest frame's index.")
    head_box: list[float] = Field(description="[x0, y0, x1, y1], the region that changes.")
    frames: list[ExportedFrame] = Field(description="Every frame, in index order.")
    build: dict[str, Any] = Field(description="The manifest's [build] table.")


def export_set(fs: FrameSet, out: Path) -> ExportIndex:
    """Write every frame of ``fs`` as a full PNG (``frame_NN.png``) plus ``frames.json``.

    The images are :meth:`FrameSet.frame` exactly: the pixels the appliance holds before it
    scales them to the screen.

    Args:
        fs: The loaded set.
        out: An existing, empty folder.

    Returns:
        The index written to ``out/frames.json``.

    Raises:
        OSError: A file cannot be written.
    """
    entries: list[ExportedFrame] = []
    for i, entry in enumerate(fs.manifest.frames):
        name = frame_name(i, fs.count)
        write_png(out / name, fs.frame(i))
        entries.append(
            ExportedFrame(
                file=name,
                index=i,
                angle=entry.angle,
                pitch=entry.pitch,
                lids=entry.lids,
                gaze=i % fs.manifest.gazes,
                row=i // (fs.manifest.gazes * len(fs.manifest.lid_phases)),
                lid=i // fs.manifest.gazes % len(fs.manifest.lid_phases),
                box=entry.box,
                patch=entry.patch,
                rest=i == fs.rest_index,
            )
        )
    index = ExportIndex(
        source=str(fs.directory),
        version=fs.version,
        size=list(fs.size),
        rest_index=fs.rest_index,
        head_box=fs.head_box.as_list(6),
        frames=entries,
        build=fs.build,
    )
    (out / EXPORT_INDEX).write_text(index.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return index


def convert_set(fs: FrameSet, out: Path) -> None:
    """Write ``fs`` (any version) into ``out`` as a version 2 set: same frames, pixel for pixel.

    The angles, per-frame ``pitch`` and ``lids``, rest frame, head box and ``[build]`` table
    are kept. The patches are written lossless (PNG) whatever the painting's size: converting
    changes no pixel (a rebuild from the painting gives a large painting's compact patches).

    Raises:
        FrameSetError: The set cannot be written as v2 (should not happen for a loaded set).
        OSError: A file cannot be written.
    """
    fields = fs.manifest.grid_fields
    write_set(
        out,
        np.asarray(fs.base),
        fs.patches,
        angles=fields["angles"],
        pitches=fields["pitches"] if fs.version == 2 else None,
        lids=fields["lids"] if fs.version == 2 else None,
        rest_index=fs.rest_index,
        head_box=fs.head_box,
        build=fs.build,
        lossless=True,
    )
