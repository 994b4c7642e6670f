"""FrameSet: manifest parsing, validation errors, base + patches, the default set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w
from PIL import Image
from skimage import data

from appliance.cli import main
from appliance.frameexport import convert_set, export_set
from appliance.frames import (
    MAX_IMAGE_PIXELS,
    FrameSet,
    FrameSetError,
    Portrait,
    default_frames_dir,
    diff_patch,
    image_size,
    parse_manifest,
)
from appliance.framewrite import PatchWriter, SetMeta, write_set
from appliance.runner import DEMO_CLIP
from appliance.types import Box
from tests.support.frames import png_header

HEAD = (200, 80, 280, 130)  # x0, y0, x1, y1 of the region that changes


def _frames(count: int = 5) -> list[np.ndarray]:
    """Real photo frames: the astronaut with a shifted crop of her face pasted in the head box."""
    base = np.ascontiguousarray(data.astronaut())
    x0, y0, x1, y1 = HEAD
    out = []
    for i in range(count):
        f = base.copy()
        # Frame i: the face region shifted i - count//2 pixels (a real, varied image change),
        # only in a sub-rectangle that moves with i so patches differ in size and place.
        dx = i - count // 2
        if dx != 0:
            sx0 = x0 + 5 + abs(dx)
            f[y0 + 10 : y1 - 10, sx0 : x1 - 5] = base[y0 + 10 : y1 - 10, sx0 - dx : x1 - 5 - dx]
        out.append(f)
    return out


def _write_set(
    folder: Path,
    frames: list[np.ndarray] | None = None,
    *,
    angles: list[float] | None = None,
    rest: int | None = None,
    size: tuple[int, int] | None = None,
    count: int | None = None,
    head_box: tuple[int, int, int, int] = HEAD,
    extra: str = "",
    no_rest: bool = False,
    angle_for: set[int] | None = None,
) -> Path:
    """Write a frame set; ``no_rest`` leaves out ``rest_index``, ``angle_for`` the frames
    that get an ``angle`` (default: all)."""
    frames = frames if frames is not None else _frames()
    n = len(frames)
    folder.mkdir(parents=True, exist_ok=True)
    angles = angles if angles is not None else [float(a) for a in np.linspace(-30, 30, n)]
    h, w = frames[0].shape[:2]
    size = size or (w, h)
    lines = [
        f"count = {count if count is not None else n}",
        f"size = [{size[0]}, {size[1]}]",
        "" if no_rest else f"rest_index = {rest if rest is not None else n // 2}",
        f"head_box = [{', '.join(str(v) for v in head_box)}]",
        extra,
    ]
    for i, (f, a) in enumerate(zip(frames, angles, strict=True)):
        Image.fromarray(f).save(folder / f"frame_{i:02d}.png")
        lines += ["[[frames]]", f'file = "frame_{i:02d}.png"']
        if angle_for is None or i in angle_for:
            lines.append(f"angle = {a}")
    (folder / "frames.toml").write_text("\n".join(lines) + "\n")
    return folder


def test_load_round_trips_every_frame(tmp_path: Path) -> None:
    frames = _frames(5)
    fs = FrameSet.load(_write_set(tmp_path / "set", frames))
    assert fs.count == 5
    assert fs.size == (512, 512)
    assert fs.rest_index == 2
    assert fs.angles == (-30.0, -15.0, 0.0, 15.0, 30.0)
    assert fs.head_box.as_list() == [200.0, 80.0, 280.0, 130.0]
    assert np.array_equal(fs.base, frames[2])
    for i, f in enumerate(frames):
        assert np.array_equal(fs.frame(i), f), i
    # Patches are the differing regions only, inside the head box.
    assert fs.patches[2].empty
    for i in (0, 1, 3, 4):
        p = fs.patches[i]
        assert not p.empty
        assert HEAD[0] <= p.x0 and p.x0 + p.width <= HEAD[2]
        assert HEAD[1] <= p.y0 and p.y0 + p.height <= HEAD[3]
    # Base + patches are far smaller than five full frames.
    assert fs.memory_bytes() < 0.3 * fs.full_frames_bytes()
    with pytest.raises(IndexError):
        fs.frame(5)
    assert not fs.base.flags.writeable


def test_diff_patch_is_tight() -> None:
    a = np.zeros((20, 30, 3), np.uint8)
    b = a.copy()
    b[5, 7, 1] = 1
    b[9, 12] = 255
    p = diff_patch(a, b)
    assert (p.x0, p.y0, p.width, p.height) == (7, 5, 6, 5)
    assert diff_patch(a, a).empty


def _expect(folder: Path, *fragments: str) -> str:
    with pytest.raises(FrameSetError) as info:
        FrameSet.load(folder)
    msg = str(info.value)
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, msg
    return msg


def test_missing_folder_and_manifest(tmp_path: Path) -> None:
    _expect(tmp_path / "nope", "nope", "does not exist")
    (tmp_path / "empty").mkdir()
    _expect(tmp_path / "empty", "frames.toml", "missing manifest")


def test_missing_image(tmp_path: Path) -> None:
    folder = _write_set(tmp_path / "s")
    (folder / "frame_03.png").unlink()
    _expect(folder, "frame_03.png", "missing image")


def test_unreadable_image(tmp_path: Path) -> None:
    folder = _write_set(tmp_path / "s")
    (folder / "frame_01.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    _expect(folder, "frame_01.png", "unreadable image")


def test_sizes_differ(tmp_path: Path) -> None:
    frames = _frames()
    frames[4] = frames[4][:500]
    _expect(_write_set(tmp_path / "s", frames), "frame_04.png", "512x500", "size = [512, 512]")


def test_manifest_size_disagrees_with_images(tmp_path: Path) -> None:
    _expect(_write_set(tmp_path / "s", size=(640, 512), head_box=HEAD), "frame_02.png", "640, 512")


def test_count_below_two(tmp_path: Path) -> None:
    _expect(_write_set(tmp_path / "s", _frames(1), angles=[0.0], rest=0), "count = 1")


def test_count_disagrees_with_frames(tmp_path: Path) -> None:
    _expect(_write_set(tmp_path / "s", count=6), "count = 6", "5 [[frames]]")


def test_rest_index_out_of_range(tmp_path: Path) -> None:
    _expect(_write_set(tmp_path / "s", rest=5), "rest_index = 5", "0..4")
    _expect(_write_set(tmp_path / "t", rest=-1), "rest_index = -1")


def test_angles_not_increasing(tmp_path: Path) -> None:
    _expect(
        _write_set(tmp_path / "s", angles=[-30, -10, -10, 10, 30]),
        "frames[2].angle",
        "must increase",
    )


def test_bad_values(tmp_path: Path) -> None:
    _expect(_write_set(tmp_path / "a", head_box=(300, 80, 200, 130)), "head_box")
    _expect(_write_set(tmp_path / "b", head_box=(0, 0, 600, 100)), "head_box")
    folder = _write_set(tmp_path / "c")
    text = (folder / "frames.toml").read_text()
    (folder / "frames.toml").write_text(text.replace("rest_index = 2", "rest_index = 'x'"))
    _expect(folder, "rest_index", "not a whole number")
    (folder / "frames.toml").write_text(text.replace("count = 5", "count = [5"))
    _expect(folder, "frames.toml", "cannot read manifest")
    (folder / "frames.toml").write_text(text.replace("count = 5\n", ""))
    _expect(folder, "missing key 'count'")
    (folder / "frames.toml").write_text(text.replace('"frame_01.png"', '"../frame_01.png"'))
    _expect(folder, "frames[1].file")


def test_change_outside_head_box(tmp_path: Path) -> None:
    frames = _frames()
    frames[0][400:410, 10:20] = 0
    _expect(_write_set(tmp_path / "s", frames), "frame_00.png", "outside head_box")


def test_default_set_is_the_clones_or_else_the_installed_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import appliance.frames as frames_module

    system = tmp_path / "usr/share/monalisa/frames"
    monkeypatch.setattr(frames_module, "SYSTEM_FRAMES_DIR", system)
    # A wheel installed into a venv: no frames/ beside the package.
    site = tmp_path / "venv/lib/site-packages"
    monkeypatch.setattr(frames_module, "__file__", str(site / "appliance/frames.py"))
    assert default_frames_dir() == system
    with pytest.raises(FrameSetError, match=re.escape(str(system))):
        FrameSet.load(default_frames_dir())  # the error names where the README puts the set
    system.mkdir(parents=True)
    assert default_frames_dir() == system
    # A clone: its frames/ wins when it holds a set; a broken one is named, not skipped.
    clone = tmp_path / "clone"
    monkeypatch.setattr(frames_module, "__file__", str(clone / "appliance/frames.py"))
    (clone / "frames").mkdir(parents=True)
    assert default_frames_dir() == system
    system.rmdir()
    assert default_frames_dir() == clone / "frames"
    (clone / "frames" / "frames.toml").write_text("")
    system.mkdir()
    assert default_frames_dir() == clone / "frames"


def test_default_set_loads() -> None:
    fs = FrameSet.load(default_frames_dir())
    assert fs.count >= 2
    assert fs.angles is not None
    assert fs.angles[0] < 0 < fs.angles[-1]
    assert fs.angles[fs.grid.rest_gaze] == 0.0
    # The default portrait is the astronaut photo; only the eyes differ from it.
    x0, y0, x1, y1 = (int(v) for v in fs.head_box.as_list())
    photo = data.astronaut()
    outside = np.ones(photo.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(fs.base[outside], photo[outside])
    assert (x1 - x0) * (y1 - y0) < 0.02 * photo.shape[0] * photo.shape[1]
    assert fs.memory_bytes() < 0.1 * fs.full_frames_bytes()


def test_rest_index_defaults_to_the_middle(tmp_path: Path) -> None:
    for n, middle in ((5, 2), (4, 2), (2, 1)):
        fs = FrameSet.load(_write_set(tmp_path / f"s{n}", _frames(n), no_rest=True))
        assert fs.rest_index == middle
        assert np.array_equal(fs.base, _frames(n)[middle])


def test_angles_are_optional(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_set(tmp_path / "s", angle_for=set(), no_rest=True)
    assert "angle" not in (folder / "frames.toml").read_text()
    fs = FrameSet.load(folder)
    assert fs.angles is None and fs.count == 5 and fs.rest_index == 2
    assert fs.summary()["angles"] is None and fs.summary()["angle_range"] is None
    assert main(["frames", "check", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "OK - 5 frames 512x512" in out and "spread evenly" in out and "rest 2" in out
    assert main(["frames", "check", str(folder), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ok"] is True and info["angles"] is None


def test_angles_all_or_none(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write_set(tmp_path / "s", angle_for={0, 1, 2, 4})
    _expect(folder, "frames.toml", "4 of 5", "frames[3] has none")
    assert main(["frames", "check", str(folder)]) == 78
    err = capsys.readouterr().err
    assert "frames[3]" in err and err.count("\n") == 1
    # A gap that would also break the order is reported as the missing angle, not the order.
    _expect(_write_set(tmp_path / "t", angles=[5, 4, 3, 2, 1], angle_for={0, 2}), "frames[1]")


def test_runner_spreads_a_set_without_angles_over_the_range(tmp_path: Path) -> None:
    """`monalisa run` on a set without angles: Gaze gets the count and `[gaze] angle_range_deg`.

    With the range set to ±1° the smoothed angle is held within ±1° and a visitor standing
    7° to one side is looked at with the last frame (with angles over ±30° it would be a middle
    one).
    """
    folder = _write_set(tmp_path / "set", angle_for=set(), no_rest=True)
    (tmp_path / "config.toml").write_text("[gaze]\nangle_range_deg = 1.0\n")
    clip = DEMO_CLIP
    res = subprocess.run(
        [
            *(sys.executable, "-m", "appliance.cli", "run", "--config", "config.toml"),
            *("--camera", f"replay:{clip}", "--display", "headless", "--replay-speed", "max"),
            *("--frames", str(folder), "--trace", "t.jsonl", "--status-file", "status.json"),
        ],
        cwd=tmp_path,
        env={**os.environ, "SDL_VIDEODRIVER": "dummy"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    trace = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert trace[0]["index"] == 2  # the default rest frame, the middle
    assert all(-1.0 - 1e-6 <= r["angle"] <= 1.0 + 1e-6 for r in trace)
    settled = [r for r in trace if r["state"] == "tracking" and abs(r["angle"]) > 0.99]
    assert settled and any(abs(r["angle_raw"]) > 5.0 for r in settled)
    assert all(r["index"] == (4 if r["angle"] > 0 else 0) for r in settled)


# -- format version 2: base + patches --------------------------------------------------------------


def _v2(
    folder: Path,
    frames: list[np.ndarray] | None = None,
    rest: int | None = None,
    preview_max: int = 1920,
) -> Path:
    """Write ``frames`` (default :func:`_frames`) as a v2 set with :func:`write_set`."""
    frames = frames if frames is not None else _frames()
    rest = len(frames) // 2 if rest is None else rest
    patches = [diff_patch(frames[rest], f) for f in frames]
    angles = [float(a) for a in np.linspace(-30, 30, len(frames))]
    write_set(
        folder,
        frames[rest],
        patches,
        angles=angles,
        rest_index=rest,
        head_box=Box(*HEAD),
        build={"mode": "test", "scale": np.float32(0.5), "eyes": (1, 2)},
        preview_max=preview_max,
    )
    return folder


def _edit(folder: Path, old: str, new: str) -> Path:
    text = (folder / "frames.toml").read_text()
    assert old in text, old
    (folder / "frames.toml").write_text(text.replace(old, new, 1))
    return folder


def test_v2_round_trips_and_holds_only_the_patches(tmp_path: Path) -> None:
    frames = _frames(5)
    folder = _v2(tmp_path / "v2", frames)
    assert sorted(p.name for p in folder.iterdir()) == ["base.png", "frames.toml", "patches"]
    assert sorted(p.name for p in (folder / "patches").iterdir()) == [
        f"frame_0{i}.png" for i in (0, 1, 3, 4)
    ]
    assert tomllib.loads((folder / "frames.toml").read_text())["version"] == 2
    fs = FrameSet.load(folder)
    assert (fs.version, fs.count, fs.rest_index, fs.size) == (2, 5, 2, (512, 512))
    assert fs.angles == (-30.0, -15.0, 0.0, 15.0, 30.0)
    assert fs.build == {"mode": "test", "scale": 0.5, "eyes": [1, 2]}
    for i, f in enumerate(frames):
        assert np.array_equal(fs.frame(i), f), i
    assert fs.patches[2].empty
    # The same set written again is the same bytes, file for file.
    again = _v2(tmp_path / "again", frames)
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (again / p.relative_to(folder)).read_bytes(), p


def test_v2_frames_with_the_same_pixels_share_one_patch(tmp_path: Path) -> None:
    """A shut blink looks the same at every gaze: such frames name one file, and a frame that
    names another frame's file with a different box is one line naming both boxes."""
    frames = _frames(5)
    frames[3], frames[4] = frames[0].copy(), frames[0].copy()
    folder = _v2(tmp_path / "v2", frames)
    assert sorted(p.name for p in (folder / "patches").iterdir()) == [
        "frame_00.png",
        "frame_01.png",
    ]
    entries = tomllib.loads((folder / "frames.toml").read_text())["frames"]
    assert [e.get("patch") for e in entries] == [
        "patches/frame_00.png",
        "patches/frame_01.png",
        None,
        "patches/frame_00.png",
        "patches/frame_00.png",
    ]
    fs = FrameSet.load(folder)
    for i, f in enumerate(frames):
        assert np.array_equal(fs.frame(i), f), i
    box = entries[1]["box"]
    _expect(
        _edit(folder, 'patch = "patches/frame_01.png"', 'patch = "patches/frame_00.png"'),
        "frames[1].patch = 'patches/frame_00.png'",
        f"not {box}",
    )


def test_a_patch_writer_writes_the_same_set_as_write_set(tmp_path: Path) -> None:
    """The builder's writer (each patch written when added) makes the same bytes as
    :func:`write_set`, and a set cut short before ``finish`` has no manifest."""
    frames = _frames(5)
    frames[4] = frames[0].copy()
    folder = _v2(tmp_path / "whole", frames)
    patches = [diff_patch(frames[2], f) for f in frames]
    writer = PatchWriter(tmp_path / "streamed", len(frames), frames[2])
    for i, patch in enumerate(patches):
        writer.add(i, patch)
    assert not (tmp_path / "streamed" / "frames.toml").exists()
    assert sorted(p.name for p in (tmp_path / "streamed" / "patches").iterdir()) == [
        "frame_00.png",
        "frame_01.png",
        "frame_03.png",
    ]
    writer.finish(
        SetMeta(
            angles=[float(a) for a in np.linspace(-30, 30, 5)],
            rest_index=2,
            head_box=Box(*HEAD),
            build={"mode": "test", "scale": np.float32(0.5), "eyes": (1, 2)},
        )
    )
    for p in sorted(folder.rglob("*")):
        if p.is_file():
            assert p.read_bytes() == (tmp_path / "streamed" / p.relative_to(folder)).read_bytes()


def test_v2_misspelt_or_misplaced_keys_are_named(tmp_path: Path) -> None:
    folder = _v2(tmp_path / "s")
    text = (folder / "frames.toml").read_text()
    _expect(_edit(folder, "rest_index = 2", "rest_indx = 2"), "frames.toml", "rest_indx", "unknown")
    (folder / "frames.toml").write_text(text)
    _expect(_edit(folder, "angle = -30.0", "angel = -30.0"), "frames[0].angel", "unknown key")
    (folder / "frames.toml").write_text(text)
    _expect(_edit(folder, "version = 2", "version = 3"), "version = 3")
    (folder / "frames.toml").write_text(text)
    _expect(_edit(folder, 'patch = "patches/frame_00.png"', 'file = "x.png"'), "frames[0].file")
    (folder / "frames.toml").write_text(text)
    _expect(_edit(folder, "version = 2\n", ""), "frames[0].patch", "version 2 key")
    (folder / "frames.toml").write_text(text)
    _expect(_edit(folder, "angle = -30.0", "angle = -30.0\nlids = 1.5"), "frames[0].lids = 1.5")


def test_v2_patch_problems_are_named(tmp_path: Path) -> None:
    folder = _v2(tmp_path / "s")
    fs = FrameSet.load(folder)
    b = [int(v) for v in fs.patches[0].box.as_list()]
    text = (folder / "frames.toml").read_text()
    # A patch whose image is not its box's size.
    Image.fromarray(np.zeros((3, 4, 3), np.uint8)).save(folder / "patches/frame_01.png")
    _expect(folder, "patches/frame_01.png", "4x3", "frames[1].box size")
    # A box outside the head box.
    _v2(folder)
    data = tomllib.loads(text)
    data["frames"][0]["box"] = [0, 0, b[2] - b[0], b[3] - b[1]]
    (folder / "frames.toml").write_text(tomli_w.dumps(data))
    _expect(folder, "frames[0].box = [0, 0,", "outside head_box")
    # A patch without its box; a missing patch file.
    del data["frames"][0]["box"]
    (folder / "frames.toml").write_text(tomli_w.dumps(data))
    _expect(folder, "frames[0]", "both 'patch' and 'box'")
    (folder / "frames.toml").write_text(text)
    (folder / "patches/frame_04.png").unlink()
    _expect(folder, "patches/frame_04.png", "missing image")


def test_convert_and_export_keep_every_frame(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = _frames(5)
    v1 = _write_set(tmp_path / "v1", frames)
    v2 = tmp_path / "v2"
    assert main(["frames", "convert", str(v1), str(v2)]) == 0
    assert "version 2" in capsys.readouterr().out
    assert main(["frames", "check", str(v1)]) == 0
    assert "format version 1" in capsys.readouterr().out
    assert main(["frames", "check", str(v2)]) == 0
    assert "format version 2" in capsys.readouterr().out
    assert (v2 / "base.png").is_file() and not list(v2.glob("frame_*.png"))
    out = tmp_path / "export"
    assert main(["frames", "export", str(v2), "--out", str(out)]) == 0
    index = json.loads((out / "frames.json").read_text())
    manifest = tomllib.loads((v2 / "frames.toml").read_text())
    assert len(index["frames"]) == 5
    for i, (entry, frame) in enumerate(zip(index["frames"], frames, strict=True)):
        # The exported image is the original full frame, pixel for pixel.
        assert np.array_equal(np.asarray(Image.open(out / entry["file"])), frame), i
        assert set(manifest["frames"][i]) <= set(entry), entry
        assert entry["angle"] == manifest["frames"][i]["angle"]
        assert entry["rest"] == (i == 2)
        assert entry["pitch"] == 0.0 and entry["lids"] == 0.0
    assert index["frames"][2]["box"] is None and index["frames"][0]["box"] is not None
    # A folder in use is refused (nothing written); a broken set exits 78.
    assert main(["frames", "convert", str(v1), str(out)]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    (v1 / "frame_03.png").unlink()
    assert main(["frames", "export", str(v1), "--out", str(tmp_path / "e2")]) == 78
    err = capsys.readouterr().err
    assert "frame_03.png" in err and err.count("\n") == 1
    assert not (tmp_path / "e2").exists()


def test_v2_preview_of_a_large_base_is_checked(tmp_path: Path) -> None:
    folder = _v2(tmp_path / "s", preview_max=100)
    manifest = tomllib.loads((folder / "frames.toml").read_text())
    assert manifest["preview"] == [100, 100]
    assert manifest["preview_file"] == "preview.webp"
    assert Image.open(folder / "preview.webp").size == (100, 100)
    assert not (_v2(tmp_path / "small") / "preview.webp").exists()  # 512 px: no preview
    FrameSet.load(folder)
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(folder / "preview.webp")
    _expect(folder, "preview.webp", "10x10", "preview = [100, 100]")
    text = (folder / "frames.toml").read_text()
    _expect(_edit(folder, "version = 2\n", ""), "preview is a version 2 key")
    (folder / "frames.toml").write_text(text.replace("100,\n    100,", "600,\n    100,"))
    _expect(folder, "preview = [600, 100]", "not be larger")


def test_a_museum_base_passes_pillows_bomb_guard_up_to_the_one_limit(tmp_path: Path) -> None:
    """The appliance reads what the builder writes: a 190 Mpx base (Pillow alone refuses above
    179 Mpx) fails here only for its missing pixels; above MAX_IMAGE_PIXELS (the builder's
    limit too, tests/test_framebuild.py) one line names the file, its size and the limit."""
    assert MAX_IMAGE_PIXELS == 200_000_000
    folder = _v2(tmp_path / "s")
    text = (folder / "frames.toml").read_text()
    assert "size = [\n    512,\n    512,\n]" in text
    for w, h in ((16000, 11875), (20000, 12000)):
        (folder / "frames.toml").write_text(text.replace("512,\n    512,", f"{w},\n    {h},"))
        png_header(folder / "base.png", w, h)
        portrait = Portrait.open(folder)  # the manifest and the patches only
        with pytest.raises(FrameSetError) as info:
            portrait.read_base()
        msg = str(info.value)
        assert "\n" not in msg and "base.png" in msg and "decompression" not in msg.lower()
        if w * h <= MAX_IMAGE_PIXELS:
            assert "unreadable image" in msg, msg
        else:
            assert "20000x12000 is 240 Mpx, more than the limit of 200 Mpx" in msg, msg


def test_export_of_a_build_equals_what_the_appliance_holds(
    small_grid_export: tuple[Path, Path],
) -> None:
    """A real build (synthesize, 3 gazes x 5 rows x 4 lid phases): every exported frame equals,
    pixel for pixel, the base and patch the appliance opens (``Portrait``: before scaling)."""
    from appliance.frames import Portrait

    built, out = small_grid_export
    held = Portrait.open(built)
    base = held.read_base()
    index = json.loads((out / "frames.json").read_text())
    angles, grid = held.angles or (), held.grid
    assert held.count == 60
    assert [f["angle"] for f in index["frames"]] == [angles[i % 3] for i in range(held.count)]
    assert [f["pitch"] for f in index["frames"]] == [grid.frames[i].pitch for i in range(60)]
    for i, entry in enumerate(index["frames"]):
        expect = base.copy()
        p = held.patches[i]
        expect[p.y0 : p.y0 + p.height, p.x0 : p.x0 + p.width] = p.pixels
        assert np.array_equal(np.asarray(Image.open(out / entry["file"])), expect), i
    first, last = index["frames"][0]["file"], index["frames"][2]["file"]
    assert first != last
    assert not np.array_equal(
        np.asarray(Image.open(out / first)), np.asarray(Image.open(out / last))
    )


def _grid_doc(keys: list[tuple[float, float]], angles: list[float]) -> dict:
    """A v2 manifest of frames equal to the base, with ``(pitch, lids)`` and angle per frame."""
    frames = [
        {"angle": a, "pitch": p, "lids": lid} for (p, lid), a in zip(keys, angles, strict=True)
    ]
    return {
        "version": 2,
        "count": len(frames),
        "size": [8, 6],
        "head_box": [0.0, 0.0, 8.0, 6.0],
        "frames": frames,
    }


def test_a_grid_of_gazes_rows_and_lid_phases() -> None:
    """Gazes fastest, then lid phases, then rows: frame (row * phases + lid) * gazes + gaze."""
    from appliance.frames import validate_manifest

    keys = [(p, lid) for p in (-10.0, 0.0, 10.0) for lid in (0.0, 1.0) for _ in range(3)]
    angles = [-20.0, 0.0, 20.0] * 6
    m = validate_manifest(_grid_doc(keys, angles), "g.toml")
    assert (m.gazes, m.pitches, m.lid_phases) == (3, (-10.0, 0.0, 10.0), (0.0, 1.0))
    assert m.angles == (-20.0, 0.0, 20.0)
    assert m.index(2, 1, 1) == (1 * 2 + 1) * 3 + 2
    assert m.frames[m.index(2, 1, 1)].pitch == 0.0 and m.frames[m.index(2, 1, 1)].lids == 1.0
    with pytest.raises(IndexError):
        m.index(3, 0, 0)


@pytest.mark.parametrize(
    ("keys", "angles", "expect"),
    [
        # A row without its shut phase.
        ([(0.0, 0.0)] * 2 + [(0.0, 1.0)] * 2 + [(5.0, 0.0)] * 2, [-1.0, 1.0] * 3, "lid phase"),
        # Rows out of order.
        ([(5.0, 0.0)] * 2 + [(0.0, 0.0)] * 2, [-1.0, 1.0] * 2, "frames[0] has pitch = 5.0"),
        # A block repeating other angles.
        ([(0.0, 0.0)] * 2 + [(0.0, 1.0)] * 2, [-1.0, 1.0, -2.0, 1.0], "repeats the same angles"),
        # One gaze per block.
        ([(0.0, 0.0), (0.0, 1.0)], [0.0, 0.0], "at least 2 gazes"),
    ],
)
def test_a_broken_grid_is_one_line(keys: list, angles: list, expect: str) -> None:
    from appliance.frames import validate_manifest

    with pytest.raises(FrameSetError) as info:
        validate_manifest(_grid_doc(keys, angles), "g.toml")
    msg = str(info.value)
    assert msg.startswith("g.toml: ") and "\n" not in msg and expect in msg, msg


def test_loading_decodes_a_patch_file_several_frames_name_once(monkeypatch):
    """The default grid names one patch file for many frames (a shut blink at every gaze):
    loading decodes it once, the frames share the patch, and its memory counts once."""
    from collections import Counter

    from appliance.frames import PatchFiles, default_frames_dir

    reads: list[str | None] = []
    real_read = PatchFiles.read

    def counted(self, i):
        reads.append(self.manifest.frames[i].patch)
        return real_read(self, i)

    monkeypatch.setattr(PatchFiles, "read", counted)
    fs = FrameSet.load(default_frames_dir())
    names = [f.patch for f in fs.manifest.frames]
    decoded = [r for r in reads if r is not None]  # (no file: nothing decoded)
    assert set(Counter(decoded).values()) == {1} and set(decoded) == set(names) - {None}
    name, users = Counter(n for n in names if n is not None).most_common(1)[0]
    sharing = [i for i, n in enumerate(names) if n == name]
    assert users > 1 and all(fs.patches[i] is fs.patches[sharing[0]] for i in sharing)
    first = {n: names.index(n) for n in set(names) if n is not None}
    once = sum(fs.patches[i].pixels.nbytes for i in first.values())
    assert fs.memory_bytes() == fs.base.nbytes + once
    assert once < sum(p.pixels.nbytes for p in fs.patches)


def test_a_large_paintings_patches_are_lossy_webp_that_leave_the_base_exact(
    tmp_path: Path,
) -> None:
    """A set with a preview keeps its patches as lossy WebP whose alpha marks the changed
    pixels: every pixel a frame does not change is the base's exactly, the changed ones stay
    close (PSNR over them >= 35 dB on the photo), the alpha survives exactly, and export,
    the set and convert agree pixel for pixel."""
    frames = _frames(5)
    for f in frames:  # a band across each changed region left as the base: a mask with holes
        f[HEAD[1] + 20 : HEAD[1] + 24] = frames[2][HEAD[1] + 20 : HEAD[1] + 24]
    folder = _v2(tmp_path / "big", frames, preview_max=256)
    names = sorted(p.name for p in (folder / "patches").iterdir())
    assert names == ["frame_00.webp", "frame_01.webp", "frame_03.webp", "frame_04.webp"]
    fs = FrameSet.load(folder)
    assert np.array_equal(fs.base, frames[2])
    errors = []
    for i, want in enumerate(frames):
        got = fs.frame(i)
        same = (want == frames[2]).all(axis=2)
        assert np.array_equal(got[same], want[same]), i  # unchanged pixels: exactly the base
        p = fs.patches[i]
        if not p.empty:
            assert p.mask is not None and np.array_equal(
                p.mask, ~same[p.y0 : p.y0 + p.height, p.x0 : p.x0 + p.width]
            )
        errors.append(((got[~same].astype(float) - want[~same]) ** 2).ravel())
    mse = float(np.concatenate(errors).mean())
    assert mse > 0 and 10 * np.log10(255**2 / mse) >= 35
    for i in range(5):
        patch = folder / (fs.manifest.frames[i].patch or "")
        if patch.is_file():
            assert image_size(patch) == Image.open(patch).size
    out = tmp_path / "export"
    out.mkdir()
    export_set(fs, out)
    for i in range(5):
        exported = np.asarray(Image.open(out / f"frame_{i:02d}.png").convert("RGB"))
        assert np.array_equal(exported, fs.frame(i))
    convert_set(fs, tmp_path / "again")  # a small base again: lossless, the same frames
    again = FrameSet.load(tmp_path / "again")
    assert all(np.array_equal(again.frame(i), fs.frame(i)) for i in range(5))
    assert all(p.mask is None for p in again.patches)


def test_a_hand_made_patch_with_alpha_covers_its_opaque_pixels_only(tmp_path: Path) -> None:
    """An RGBA PNG patch (not the builder's, but the format allows it): alpha >= 128 is the
    frame's pixel, below it the base shows."""
    frames = _frames(5)
    folder = _v2(tmp_path / "s", frames)
    entry = parse_manifest(folder / "frames.toml").frames[0]
    assert entry.patch is not None and entry.box is not None
    x0, y0, x1, y1 = entry.box
    rgb = np.asarray(Image.open(folder / entry.patch).convert("RGB"))
    alpha = np.zeros(rgb.shape[:2], np.uint8)
    alpha[:, : rgb.shape[1] // 2] = 200  # the left half opaque enough
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(folder / entry.patch)
    got = FrameSet.load(folder).frame(0)
    half = x0 + (x1 - x0) // 2
    assert np.array_equal(got[y0:y1, x0:half], frames[0][y0:y1, x0:half])
    assert np.array_equal(got[y0:y1, half:x1], frames[2][y0:y1, half:x1])


def test_a_preview_named_by_an_older_manifest_still_loads(tmp_path: Path) -> None:
    """A set written before ``preview_file`` existed has ``preview.png``; a misplaced
    ``preview_file`` (no ``preview``) is named."""
    folder = _v2(tmp_path / "s", preview_max=256)
    Image.open(folder / "preview.webp").save(folder / "preview.png")
    (folder / "preview.webp").unlink()
    _edit(folder, 'preview_file = "preview.webp"\n', "")
    portrait = Portrait.open(folder)
    small = portrait.read_preview()
    assert small is not None and small.shape == (256, 256, 3)
    text = (folder / "frames.toml").read_text()
    start, end = text.index("preview = ["), text.index("]", text.index("preview = [")) + 1
    (folder / "frames.toml").write_text(text[:start] + 'preview_file = "p.png"' + text[end:])
    _expect(folder, "preview_file", "preview = [w, h]")


def test_convert_changes_no_pixel_of_a_large_painting(tmp_path: Path) -> None:
    """``frames convert`` of a painting larger than 1920 px keeps every pixel (lossless PNG
    patches, beside the preview such a painting gets); the same frames written by the
    builder's default are lossy WebP."""
    wide = np.ascontiguousarray(np.tile(data.astronaut()[:140], (1, 4, 1))[:, :2000])
    frames = []
    for dx in (-2, -1, 0, 1, 2):
        f = wide.copy()
        f[90:120, 220:260] = wide[90:120, 220 - dx : 260 - dx]
        frames.append(f)
    v1 = _write_set(tmp_path / "v1", frames, head_box=(200, 80, 280, 130))
    assert main(["frames", "convert", str(v1), str(tmp_path / "v2")]) == 0
    converted = FrameSet.load(tmp_path / "v2")
    assert (tmp_path / "v2" / "preview.webp").is_file()
    assert {p.suffix for p in (tmp_path / "v2" / "patches").iterdir()} == {".png"}
    assert all(np.array_equal(converted.frame(i), frames[i]) for i in range(5))
    patches = [diff_patch(frames[2], f) for f in frames]
    write_set(tmp_path / "lossy", frames[2], patches, angles=None, rest_index=2, head_box=None)
    assert {p.suffix for p in (tmp_path / "lossy" / "patches").iterdir()} == {".webp"}
