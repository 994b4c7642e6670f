"""`monalisa trace plot`: reading traces (good, cut short, corrupt) and drawing them."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from appliance.cli import main
from appliance.traceplot import TraceError, load_trace, plot_trace

ROW = {
    "t": 0.0,
    "seq": 0,
    "faces": [{"box": [1, 2, 30, 40], "score": 0.9, "eyes": [[10, 12], [20, 12]]}],
    "viewer": 1,
    "angle_raw": 3.0,
    "angle": 2.5,
    "index": 17,
    "frame_count": 33,
    "state": "tracking",
    "ms": {"capture": 1.0, "detect": 5.0, "gaze": 0.1, "draw": 0.5},
    "inferences": 1,
}


def rows(n: int = 90) -> list[dict]:
    out = []
    for i in range(n):
        r = json.loads(json.dumps(ROW))
        state = "idle" if i < 30 else "tracking" if i < 60 else "holding"
        r.update(
            seq=i,
            t=100.0 + i / 30,
            state=state,
            index=16 if i < 30 else 16 + (i - 30) // 3 if i < 60 else 26,
            angle=0.0 if i < 30 else 10.0,
            angle_raw=None if state != "tracking" else 10.0 + (i % 3) * 0.1,
            viewer=None if state == "idle" else 1,
            faces=[] if state != "tracking" else ROW["faces"],
        )
        out.append(r)
    return out


def write(path: Path, items: list[dict], tail: bytes = b"") -> Path:
    path.write_bytes(b"".join(json.dumps(r).encode() + b"\n" for r in items) + tail)
    return path


def test_load_trace_reads_every_field(tmp_path):
    tr = load_trace(write(tmp_path / "t.jsonl", rows()))
    assert len(tr) == 90 and tr.skipped == []
    assert tr.t[0] == 100.0 and tr.frame_count == 33
    assert tr.state[:30] == ["idle"] * 30 and tr.state[-1] == "holding"
    assert tr.index[45] == 21.0 and tr.faces[45] == 1.0 and tr.faces[0] == 0.0
    assert np.isnan(tr.angle_raw[0]) and tr.angle_raw[30] == 10.0
    assert tr.viewer[0] is None and tr.viewer[40] == "1"


def test_cut_short_and_corrupt_lines_are_skipped_with_line_numbers(tmp_path):
    good = rows(10)
    lines = [json.dumps(r) for r in good]
    lines[3] = '{"t": 1.0, "angle": "left"}'  # wrong type
    lines[5] = "not json"
    lines.insert(7, "[1, 2]")
    text = "\n".join(lines) + '\n{"t": 4.3, "seq": 10, "fac'  # cut short while writing
    path = tmp_path / "t.jsonl"
    path.write_text(text)
    tr = load_trace(path)
    assert len(tr) == 8
    assert [n for n, _ in tr.skipped] == [4, 6, 8, 12]
    reasons = dict(tr.skipped)
    assert "angle = " in reasons[4] and "not a number" in reasons[4]
    assert reasons[6] == "not valid JSON"
    assert "list" in reasons[8]
    assert reasons[12] == "cut short (last line)"
    assert tr.warnings()[0] == f"{path}:4: skipped: {reasons[4]}"


def test_many_bad_lines_give_a_short_report(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join([json.dumps(ROW)] + ["{"] * 40) + "\n")
    warnings = load_trace(path).warnings()
    assert len(warnings) == 6 and warnings[-1] == f"{path}: skipped 35 more unusable lines"


@pytest.mark.parametrize(
    "content,expect",
    [
        (b"", "empty trace"),
        (b"\n\n", "empty trace"),
        (b"{", "line 1: cut short"),
        (b"\xff\xfe\n", "line 1: not UTF-8"),
        (b'{"seq": 0}\n{"t": NaN}\n', "line 1: no 't' (and 1 more"),
        (b'{"t": 1e400}\n', "t = inf: not a finite number"),
        (b'{"t": true}\n', "t = True: not a number"),
    ],
)
def test_unusable_trace_is_one_line_error_naming_the_file(tmp_path, content, expect):
    path = tmp_path / "t.jsonl"
    path.write_bytes(content)
    with pytest.raises(TraceError) as err:
        load_trace(path)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(str(path)) and expect in msg


def test_missing_file(tmp_path):
    with pytest.raises(TraceError, match="cannot read"):
        load_trace(tmp_path / "nope.jsonl")


def test_plot_draws_the_states_and_lines(tmp_path):
    out = tmp_path / "plot.png"
    plot_trace(load_trace(write(tmp_path / "t.jsonl", rows())), out)
    im = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert im.shape[0] > 600 and im.shape[1] > 1000

    def has(rgb: str) -> int:
        c = np.array([int(rgb[i : i + 2], 16) for i in (1, 3, 5)])
        return int((np.abs(im - c).sum(axis=2) <= 6).sum())

    # Each state's shading and the smoothed-angle and index lines are on the picture.
    for colour in ("#b7e4c7", "#ffd89b", "#dcdcdc"):
        assert has(colour) > 20_000, colour
    for colour in ("#1f4e9c", "#b3261e"):
        assert has(colour) > 500, colour


def test_plot_draws_pitch_and_lids(tmp_path):
    """Rows and blinks: the pitch (green) and the lids (orange) under the gaze index, and the
    blinks counted in the title (each run of closing lids is one)."""
    items = rows()
    for i, r in enumerate(items):
        r["pitch"] = -7.5 if i >= 45 else 0.0
        r["lids"] = {41: 0.3333, 42: 1.0, 43: 0.3333, 71: 0.6667, 72: 0.3333}.get(i, 0.0)
    tr = load_trace(write(tmp_path / "t.jsonl", items))
    assert tr.pitch[50] == -7.5 and tr.lids[42] == 1.0 and tr.lids[0] == 0.0
    out = tmp_path / "plot.png"
    plot_trace(tr, out)
    im = np.asarray(Image.open(out).convert("RGB")).astype(int)
    for colour in ("#2e7d32", "#e65100"):
        c = np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)])
        assert int((np.abs(im - c).sum(axis=2) <= 30).sum()) > 50, colour
    from appliance.traceplot import _summary

    assert "2 blinks" in _summary(tr)


def test_plot_without_idle_has_no_idle_shading(tmp_path):
    out = tmp_path / "plot.png"
    plot_trace(load_trace(write(tmp_path / "t.jsonl", rows()[30:60])), out)
    im = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert (np.abs(im - np.array([0xDC, 0xDC, 0xDC])).sum(axis=2) <= 3).sum() < 2000


def test_cli_plot_reports_skipped_lines_and_writes_png(tmp_path, capsys):
    trace = write(tmp_path / "t.jsonl", rows(), tail=b'{"t": 9')
    out = tmp_path / "p.png"
    assert main(["trace", "plot", str(trace), "-o", str(out), "--title", "walk"]) == 0
    cap = capsys.readouterr()
    assert f"{trace}:91: skipped: cut short (last line)" in cap.err
    assert "90 camera frames plotted" in cap.out
    assert Image.open(out).format == "PNG"


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{\n")
    assert main(["trace", "plot", str(bad), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(bad) in err and not (tmp_path / "p.png").exists()
    good = write(tmp_path / "t.jsonl", rows(5))
    assert main(["trace", "plot", str(good), "-o", str(tmp_path / "no" / "dir" / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the plot" in err


def test_missing_matplotlib_is_a_one_line_hint(tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    trace = write(tmp_path / "t.jsonl", rows(5))
    assert main(["trace", "plot", str(trace), "-o", str(tmp_path / "p.png")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'monalisa[plot]'" in err


def test_appliance_does_not_import_matplotlib():
    code = (
        "import sys, appliance.cli, appliance.gaze, appliance.traceplot; "
        "appliance.cli.build_parser(); print('matplotlib' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.stdout.strip() == "False", res.stderr


def test_demo_trace_of_a_visitor_round_trips(tmp_path):
    # The demo script's simulated visitor, through Gaze, in the appliance's trace format.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from appliance.config import Config
    from benchmarks.gaze_trace_demo import simulate

    trace = tmp_path / "walk.jsonl"
    simulate(Config(), trace)
    tr = load_trace(trace)
    assert len(tr) == 660 and tr.skipped == [] and tr.frame_count == 33
    assert tr.state[0] == "idle" and tr.state[-1] == "idle"
    assert {"tracking", "holding"} <= set(tr.state)
    assert tr.index[-1] == 16  # back at rest
    walking_in = [i for t, i in zip(tr.t, tr.index, strict=True) if 2.6 <= t <= 4.9]
    assert walking_in == sorted(walking_in)  # walking toward the visitor's right: rising index
    plot_trace(tr, tmp_path / "walk.png")
    assert (tmp_path / "walk.png").stat().st_size > 10_000
