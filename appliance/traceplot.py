"""``monalisa trace plot``: draw a gaze trace (angles, frame index, states) to tune with.

A trace is the JSON Lines file ``monalisa run --trace FILE`` writes (its lines are defined in
:mod:`appliance.trace`). Reading (:func:`load_trace`) needs no plotting library. Drawing
(:func:`plot_trace`) imports matplotlib lazily - it comes with the optional ``plot`` extra
(``pip install 'monalisa[plot]'``), the appliance itself never needs it. A line that is cut
short (the appliance was stopped while writing), not JSON, or has a value of the wrong type is
skipped and reported with its line number; only a trace without a single usable line is an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from appliance.trace import TraceLineError, parse_line

STATES = ("tracking", "holding", "idle")
"""The gaze states, in the order they are drawn in the legend."""
STATE_COLOURS = {"tracking": "#b7e4c7", "holding": "#ffd89b", "idle": "#dcdcdc"}
"""Background shading of each state."""
MAX_ABS = 1e12
"""Numbers beyond this magnitude are treated as corrupt (they would break the axes)."""
MAX_WARNINGS = 5
"""Skipped lines reported one by one; the rest are counted."""


class TraceError(ValueError):
    """A trace that cannot be plotted; the message is one line naming the file."""


@dataclass
class Trace:
    """The usable rows of a trace file, as parallel lists (NaN where a value is absent).

    Attributes:
        path: The file read.
        t: Time of each row, seconds.
        angle_raw: Measured angle to the viewer, degrees (NaN if none).
        angle: Smoothed angle, degrees (NaN if absent).
        index: Frame index shown (NaN if absent).
        faces: Number of faces found (NaN if absent).
        viewer: Viewer id as text, or None.
        state: Gaze state (``"tracking"``, ``"holding"``, ``"idle"`` or ``""`` if unknown).
        pitch: Vertical gaze of the frame shown, degrees, + = up (NaN if absent).
        lids: Lid phase of the frame shown, 0 open .. 1 shut (NaN if absent).
        frame_count: Number of gazes of the portrait, if the trace says.
        skipped: ``(line number, reason)`` for every line that was not usable.
    """

    path: Path
    t: list[float] = field(default_factory=list)
    angle_raw: list[float] = field(default_factory=list)
    angle: list[float] = field(default_factory=list)
    index: list[float] = field(default_factory=list)
    faces: list[float] = field(default_factory=list)
    viewer: list[str | None] = field(default_factory=list)
    state: list[str] = field(default_factory=list)
    pitch: list[float] = field(default_factory=list)
    lids: list[float] = field(default_factory=list)
    frame_count: int | None = None
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.t)

    def warnings(self) -> list[str]:
        """One line per skipped line (at most :data:`MAX_WARNINGS`, then a count)."""
        out = [f"{self.path}:{n}: skipped: {why}" for n, why in self.skipped[:MAX_WARNINGS]]
        more = len(self.skipped) - MAX_WARNINGS
        if more > 0:
            out.append(f"{self.path}: skipped {more} more unusable lines")
        return out


class _Bad(Exception):
    pass


def _plotted(key: str, value: float | None) -> float:
    """A number to draw: NaN where absent; beyond :data:`MAX_ABS` the line is corrupt."""
    if value is None:
        return math.nan
    if abs(value) > MAX_ABS:
        raise _Bad(f"{key!r} = {value!r} is out of range")
    return float(value)


_Row = tuple[float, float, float, float, float, str | None, str, int | None, float, float]


def _parse(row: Any) -> _Row:
    try:
        line = parse_line(row)
    except TraceLineError as why:
        raise _Bad(str(why)) from None
    t = _plotted("t", line.t)
    angle_raw = _plotted("angle_raw", line.angle_raw)
    angle = _plotted("angle", line.angle)
    index = _plotted("index", line.index)
    faces = math.nan if line.faces is None else float(len(line.faces))
    viewer = None if line.viewer is None else str(line.viewer)[:20]
    state = line.state if line.state in STATES else ""
    count = line.frame_count if line.frame_count and 1 <= line.frame_count <= 100_000 else None
    pitch, lids = _plotted("pitch", line.pitch), _plotted("lids", line.lids)
    return t, angle_raw, angle, index, faces, viewer, state, count, pitch, lids


def load_trace(path: str | Path) -> Trace:
    """Read a trace file, keeping every usable line.

    Args:
        path: The JSON Lines trace.

    Returns:
        The usable rows, and the skipped lines with their reasons.

    Raises:
        TraceError: The file cannot be read or has no usable line (one line naming it).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as err:
        raise TraceError(f"{p}: cannot read: {err.strerror or err}") from None
    trace = Trace(path=p)
    lines = data.split(b"\n")
    for n, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise _Bad("not UTF-8 text") from None
            try:
                row = json.loads(text)
            except (json.JSONDecodeError, RecursionError):
                last = n == len(lines) or (n == len(lines) - 1 and not lines[-1])
                raise _Bad("cut short (last line)" if last else "not valid JSON") from None
            t, angle_raw, angle, index, faces, viewer, state, count, pitch, lids = _parse(row)
        except _Bad as why:
            trace.skipped.append((n, str(why)))
            continue
        trace.t.append(t)
        trace.angle_raw.append(angle_raw)
        trace.angle.append(angle)
        trace.index.append(index)
        trace.faces.append(faces)
        trace.viewer.append(viewer)
        trace.state.append(state)
        trace.pitch.append(pitch)
        trace.lids.append(lids)
        if count is not None:
            trace.frame_count = count
    if not trace.t:
        if not trace.skipped:
            raise TraceError(f"{p}: empty trace, nothing to plot")
        first, reason = trace.skipped[0]
        more = len(trace.skipped) - 1
        extra = f" (and {more} more unusable lines)" if more else ""
        raise TraceError(f"{p}: no usable trace line; line {first}: {reason}{extra}")
    return trace


def _summary(trace: Trace) -> str:
    t = trace.t
    duration = max(t) - min(t)
    changes = sum(
        1
        for a, b in zip(trace.index, trace.index[1:], strict=False)
        if a == a and b == b and a != b
    )
    viewers = {v for v in trace.viewer if v is not None}
    rate = f", {(len(t) - 1) / duration:.1f} frames/s" if duration > 0 else ""
    return (
        f"{len(t)} camera frames over {duration:.1f} s{rate}; {changes} gaze changes; "
        f"{_blinks(trace.lids)} blinks; "
        f"{len(viewers)} viewer{'s' if len(viewers) != 1 else ''}"
    )


def _blinks(lids: list[float]) -> int:
    """How many runs of closing lids (``lids`` > 0) the trace holds."""
    return sum(1 for i, v in enumerate(lids) if v > 0 and (i == 0 or not lids[i - 1] > 0))


def _state_spans(x: list[float], states: list[str]) -> dict[str, list[tuple[float, float]]]:
    """``(start, width)`` runs of each state; a row's state lasts until the next row."""
    spans: dict[str, list[tuple[float, float]]] = {s: [] for s in STATES}
    if not x:
        return spans
    step = (x[-1] - x[0]) / max(len(x) - 1, 1)
    start = 0
    for i in range(1, len(x) + 1):
        if i == len(x) or states[i] != states[start]:
            end = x[i] if i < len(x) else x[-1] + step
            if states[start] in spans and end > x[start]:
                spans[states[start]].append((x[start], end - x[start]))
            start = i
    return spans


def plot_trace(trace: Trace, out: str | Path, *, title: str | None = None) -> None:
    """Draw raw and smoothed angle, gaze index, pitch and lids, and faces over time.

    Args:
        trace: What :func:`load_trace` read.
        out: The image to write (PNG; the suffix picks the format matplotlib writes).
        title: Title of the figure (default: the trace's file name).

    Raises:
        TraceError: matplotlib is missing, or the image cannot be written (one line).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Patch
    except ImportError:
        raise TraceError(
            "matplotlib is not installed; install the plot extra: pip install 'monalisa[plot]'"
        ) from None

    t0 = trace.t[0]
    x = [v - t0 for v in trace.t]
    fig, (ax_a, ax_i, ax_p, ax_f) = plt.subplots(
        4,
        1,
        sharex=True,
        figsize=(12, 9.0),
        gridspec_kw={"height_ratios": [3, 2, 1.5, 1]},
        constrained_layout=True,
    )
    try:
        spans = _state_spans(x, trace.state)
        for ax in (ax_a, ax_i, ax_p, ax_f):
            for state in STATES:
                if spans[state]:
                    ax.broken_barh(
                        spans[state],
                        (0, 1),
                        facecolors=STATE_COLOURS[state],
                        transform=ax.get_xaxis_transform(),
                        linewidth=0,
                        zorder=0,
                    )
            ax.grid(True, color="white", linewidth=0.8, zorder=1)
            ax.set_axisbelow(True)
        ax_a.plot(
            x,
            trace.angle_raw,
            ".",
            ms=2.5,
            color="#7f7f7f",
            label="raw angle",
            zorder=2,
            rasterized=len(x) > 20_000,
        )
        ax_a.plot(x, trace.angle, "-", lw=1.6, color="#1f4e9c", label="smoothed angle", zorder=3)
        ax_a.axhline(0.0, color="black", lw=0.6, zorder=1)
        ax_a.set_ylabel("gaze angle (°)\n← visitor's left · right →")
        state_patches = [
            Patch(facecolor=STATE_COLOURS[s], label=s) for s in STATES if s in trace.state
        ]
        handles, _ = ax_a.get_legend_handles_labels()
        ax_a.legend(
            handles=[*handles, *state_patches],
            loc="upper left",
            ncol=5,
            fontsize=9,
            framealpha=0.9,
        )
        ax_i.step(x, trace.index, where="post", lw=1.6, color="#b3261e", label="frame index")
        if trace.frame_count is not None:
            ax_i.set_ylim(-0.5, trace.frame_count - 0.5)
            ax_i.axhline((trace.frame_count - 1) / 2, color="black", lw=0.6, zorder=1)
        ax_i.set_ylabel("gaze index\n(0 = visitor's left)")
        ax_p.step(x, trace.pitch, where="post", lw=1.4, color="#2e7d32", label="pitch")
        ax_p.set_ylabel("pitch (°)\n+ = up", color="#2e7d32")
        ax_l = ax_p.twinx()
        ax_l.step(x, trace.lids, where="post", lw=1.0, color="#e65100", label="lids")
        ax_l.set_ylim(-0.05, 1.05)
        ax_l.set_ylabel("lids\n0 open · 1 shut", color="#e65100")
        ax_f.step(x, trace.faces, where="post", lw=1.2, color="#444444")
        switches = [
            x[i]
            for i in range(1, len(x))
            if trace.viewer[i] is not None
            and trace.viewer[i - 1] is not None
            and trace.viewer[i] != trace.viewer[i - 1]
        ]
        for ax in (ax_a, ax_i, ax_p, ax_f):
            for sx in switches[:200]:
                ax.axvline(sx, color="#6a1b9a", lw=0.8, ls="--", zorder=2)
        ax_f.set_ylabel("faces")
        ax_f.yaxis.get_major_locator().set_params(integer=True)
        ax_f.set_xlabel(f"time (s) from t = {t0:g}")
        heading = title or trace.path.name
        fig.suptitle(f"{heading} — {_summary(trace)}", fontsize=11)
        try:
            fig.savefig(out, dpi=110)
        except (OSError, ValueError) as err:
            reason = getattr(err, "strerror", None) or str(err)
            raise TraceError(f"{out}: cannot write the plot: {reason}") from None
    finally:
        plt.close(fig)
