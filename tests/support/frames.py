"""Frame sets in the older layout, for tests and benchmarks of what version 1 costs."""

from __future__ import annotations

from pathlib import Path

from appliance.frames import FrameSet, export_set


def write_v1(frames: FrameSet, folder: Path) -> Path:
    """Write ``frames`` into the new folder ``folder`` as a version 1 set: every frame a full
    PNG and a manifest without ``version`` (how the builder wrote sets before version 2)."""
    folder.mkdir(parents=True)
    index = export_set(frames, folder)
    (folder / "frames.json").unlink()
    lines = [
        f"count = {len(index.frames)}",
        f"size = {index.size}",
        f"rest_index = {index.rest_index}",
        f"head_box = {[int(v) for v in index.head_box]}",
    ]
    for f in index.frames:
        lines += ["[[frames]]", f'file = "{f.file}"']
        if f.angle is not None:
            lines.append(f"angle = {f.angle}")
    (folder / "frames.toml").write_text("\n".join(lines) + "\n")
    return folder
