"""A still visitor for 40 s through the real appliance (issue 25's "Done when").

``monalisa run`` (replay camera at the clip's own pace, ``--replay-speed max``: every frame,
as fast as the appliance takes them; BlazeFace; gaze; the default 33 x 5 x 4 frame set; SDL's
dummy driver) on a clip of one visitor standing still, its trace read back: 3-30 blinks a
minute, each 80-500 ms in the trace's own time (the clip's: the blink clock runs on the camera
frames' time), at most one change of gaze or row once the eyes have turned to the visitor;
the same visitor with eyes 40 cm lower is looked at with a mean ``pitch`` at least 2 degrees
lower. Both runs go in parallel (about 25 s each here at load 5).
"""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.support.run import MONALISA, app_env
from tests.support.sim import CameraGeometry, Renderer, Visitor, astronaut_photo, write_clip

FPS = 30.0
SECONDS = 40.0
SETTLE_S = 2.0
"""The eyes turn from rest to the visitor in the first moments; changes are counted after."""
GEOMETRY = CameraGeometry(width=640, height=480, hfov_deg=66.0, height_m=1.75)

pytestmark = pytest.mark.slow


def still_clip(out: Path, eye_height_m: float) -> Path:
    """A visitor standing 1.5 m out, 0.2 m to the image's right, eyes ``eye_height_m`` above
    the floor (the camera 1.75 m up, level, at the portrait's eyes): four camera frames (their
    sensor noise differs), then links to them, 40 s at 30 fps."""
    renderer = Renderer(astronaut_photo(), GEOMETRY, seed=5)
    visitor = Visitor(x_m=0.2, distance_m=1.5, eye_height_m=eye_height_m)
    write_clip(out, (renderer.render([visitor]) for _ in range(4)), FPS)
    for i in range(4, int(SECONDS * FPS)):
        (out / f"frame_{i:05d}.png").symlink_to(f"frame_{i % 4:05d}.png")
    return out


def blinks(rows: list[dict]) -> list[float]:
    """Each blink's length in the trace, seconds: from its first line with the lids not open
    to the first line after it with them open."""
    out, start = [], None
    for row in rows:
        if row["lids"] > 0 and start is None:
            start = row["t"]
        elif row["lids"] == 0 and start is not None:
            out.append(row["t"] - start)
            start = None
    return out


@pytest.fixture(scope="module")
def traces(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict]]:
    """The traces of the level visitor (eyes at 1.75 m) and the lower one (1.35 m)."""
    runs = {}
    for name, height in (("level", 1.75), ("lower", 1.35)):
        work = tmp_path_factory.mktemp(name)
        clip = still_clip(work / "clip", height)
        args = [
            *MONALISA,
            "run",
            *("--camera", f"replay:{clip}", "--replay-speed", "max", "--display", "headless"),
            *("--status-file", str(work / "status.json"), "--trace", str(work / "t.jsonl")),
        ]
        err = (work / "stderr").open("w")
        runs[name] = (work, subprocess.Popen(args, env=app_env(), stderr=err), err)
    out = {}
    for name, (work, proc, err) in runs.items():
        rc = proc.wait(timeout=600)
        err.close()
        assert rc == 0, (work / "stderr").read_text()[-2000:]
        lines = (work / "t.jsonl").read_text().splitlines()
        out[name] = [json.loads(line) for line in lines]
    return out


def test_a_still_visitor_blinks_at_human_rates_and_holds_the_gaze(
    traces: dict[str, list[dict]],
) -> None:
    for rows in traces.values():
        assert len(rows) == SECONDS * FPS  # every frame of the clip, in order
        assert rows[-1]["t"] == pytest.approx(SECONDS - 1 / FPS)
        seen = sum(1 for r in rows if r["faces"])
        assert seen >= 0.95 * len(rows), seen
        lengths = blinks(rows)
        per_min = len(lengths) * 60.0 / SECONDS
        assert 3 <= per_min <= 30, lengths
        assert all(0.08 <= b <= 0.5 for b in lengths), lengths
        assert max(r["lids"] for r in rows) == 1.0  # the lids do shut
        shown = [(r["index"], r["pitch"]) for r in rows if r["t"] >= SETTLE_S]
        changes = sum(a != b for a, b in itertools.pairwise(shown))
        assert changes <= 1, changes


def test_the_same_visitor_lower_in_the_image_is_looked_at_lower(
    traces: dict[str, list[dict]],
) -> None:
    level = float(np.mean([r["pitch"] for r in traces["level"]]))
    lower = float(np.mean([r["pitch"] for r in traces["lower"]]))
    eyes = {
        k: np.mean([f["eyes"][0][1] for r in v for f in r["faces"][:1]]) for k, v in traces.items()
    }
    assert eyes["lower"] > eyes["level"] + 50  # lower in the camera image, pixels
    assert lower <= level - 2.0, (level, lower)
