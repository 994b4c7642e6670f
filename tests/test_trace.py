"""appliance.trace: the trace line's one definition, its writer and its reader."""

from __future__ import annotations

import json
import math

import pytest

from appliance.trace import TraceLine, TraceLineError, TraceWriter, parse_line
from appliance.types import Box, Face, Point


def face() -> Face:
    pts = (Point(40.123, 50.0), Point(60.0, 50.0), Point(50, 60), Point(50, 70), Point(30, 55))
    return Face(Box(20.0, 30.0, 80.0, 90.0), 0.912345, (*pts, Point(70, 55)))


def line(**over) -> TraceLine:
    args = {
        "t": 1.234567,
        "seq": 3,
        "faces": [face()],
        "viewer": 1,
        "angle_raw": 10.12345,
        "angle": 9.87654,
        "index": 17,
        "frame_count": 33,
        "state": "tracking",
        "inferences": 2,
        "camera": "running",
        "pitch": 7.5,
        "lids": 0.6667,
        "ms": {"capture": 1.23456, "detect": 5.0, "gaze": 0.1, "draw": 0.5, "latency": 9.0},
    }
    return TraceLine.of(**{**args, **over})


def test_the_writer_writes_compact_lines_that_read_back(tmp_path):
    p = tmp_path / "t.jsonl"
    w = TraceWriter(p)
    w.write(line())
    w.write(line(seq=4, viewer=None, angle_raw=None))
    w.close()
    texts = p.read_text().splitlines()
    assert len(texts) == 2 and ": " not in texts[0] and ", " not in texts[0]
    row = json.loads(texts[0])
    assert list(row) == [
        *("t", "seq", "faces", "viewer", "angle_raw", "angle", "index", "frame_count"),
        *("state", "inferences", "camera", "pitch", "lids"),
        *("drawn_index", "drawn_pitch", "drawn_lids", "ms"),
    ]
    assert row["t"] == 1.2346 and row["angle_raw"] == 10.123 and row["ms"]["capture"] == 1.235
    assert row["faces"][0]["score"] == 0.9123 and len(row["faces"][0]["eyes"]) == 2
    assert parse_line(row) == line()
    assert json.loads(texts[1])["angle_raw"] is None
    assert (row["pitch"], row["lids"]) == (7.5, 0.6667)
    # Without a frame drawn in its stead, the one asked for is the one drawn.
    assert (row["drawn_index"], row["drawn_pitch"], row["drawn_lids"]) == (17, 7.5, 0.6667)
    other = line(drawn=(16, 0.123456, 0.0)).model_dump()
    assert (other["index"], other["pitch"], other["lids"]) == (17, 7.5, 0.6667)
    assert (other["drawn_index"], other["drawn_pitch"], other["drawn_lids"]) == (16, 0.123, 0.0)


def test_a_nan_figure_is_refused_when_the_line_is_made():
    with pytest.raises(ValueError):
        line(angle=math.nan)


@pytest.mark.parametrize(
    ("row", "why"),
    [
        ([1, 2], "a JSON list, not an object"),
        ({"seq": 0}, "no 't'"),
        ({"t": True}, "t = True: not a number"),
        ({"t": 1.0, "angle": "left"}, "angle = 'left': not a number"),
        ({"t": math.inf}, "t = inf: not a finite number"),
    ],
)
def test_a_bad_line_says_why_in_a_few_words(row, why):
    with pytest.raises(TraceLineError) as err:
        parse_line(row)
    assert str(err.value) == why


def test_only_t_is_required_and_unknown_keys_are_ignored():
    got = parse_line({"t": 2, "future_key": {"x": 1}})
    assert got.t == 2.0 and got.faces is None and got.ms is None
