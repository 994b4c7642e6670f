"""Version 1 frame sets and image files that only claim a size, for tests and benchmarks."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

from appliance.frames import FrameSet, frame_name
from appliance.framewrite import write_png


def write_v1(frames: FrameSet, folder: Path) -> Path:
    """Write ``frames`` into the new folder ``folder`` as a version 1 set: every frame a full
    PNG and a manifest without ``version`` (how the builder wrote sets before version 2).

    Version 1 has no rows or lid phases: a set with them is written as its rest row with open
    eyes (one frame per gaze).
    """
    folder.mkdir(parents=True)
    grid = frames.grid
    w, h = frames.size
    hb = frames.head_box
    lines = [
        f"count = {grid.gazes}",
        f"size = [{w}, {h}]",
        f"rest_index = {grid.rest_gaze}",
        f"head_box = {[int(v) for v in hb.as_list()]}",
    ]
    for gaze in range(grid.gazes):
        name = frame_name(gaze, grid.gazes)
        write_png(folder / name, frames.frame(grid.index(gaze, grid.rest_row, 0)))
        lines += ["[[frames]]", f'file = "{name}"']
        if frames.angles is not None:
            lines.append(f"angle = {frames.angles[gaze]}")
    (folder / "frames.toml").write_text("\n".join(lines) + "\n")
    return folder


def png_header(path: Path, width: int, height: int) -> None:
    """Write a PNG whose header says ``width×height`` RGB but holds no pixels.

    Opening it reads the size at no cost (a limit on the size can be tested without
    allocating it); decoding it fails.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))
