"""The trace file: one JSON line per processed camera frame, its one definition, writer and reader.

``monalisa run --trace FILE`` writes it (:class:`TraceWriter`); ``monalisa trace plot`` and the
demo's summary read it (:func:`parse_line`). A line holds numbers only, never pixels::

    {"t": s, "seq": n, "faces": [{"box", "score", "eyes"}], "viewer": id|null,
     "angle_raw": deg|null, "angle": deg, "index": i, "frame_count": n,
     "state": "tracking"|"holding"|"idle", "inferences": n, "camera": state,
     "pitch": deg, "lids": 0..1, "drawn_index": i, "drawn_pitch": deg, "drawn_lids": 0..1,
     "ms": {"capture", "detect", "gaze", "draw", "latency"}}

``index``, ``pitch`` and ``lids`` are the frame asked for (the gaze's choice, the blink
clock's lids); ``drawn_*`` the frame on screen for it, which differs only while the asked
frame's patch is not rendered yet (the nearest rendered frame is drawn meanwhile).

Reading requires only ``t``; every other key may be missing or null, and keys the reader does
not know are ignored. A known key with a value of the wrong type, or a number that is NaN or
infinite, makes the line unusable (:class:`TraceLineError`, one line naming the key).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, ValidationError

from appliance.config import format_validation_error
from appliance.types import Face


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)


class TraceFace(_Record):
    """One face found in the frame.

    Attributes:
        box: ``[x0, y0, x1, y1]`` in frame pixels.
        score: Detector confidence, 0 … 1.
        eyes: ``[[x, y] right eye, [x, y] left eye]`` (the person's own right and left), frame
            pixels.
    """

    box: list[float]
    score: float
    eyes: list[list[float]]


class TraceMs(_Record):
    """Milliseconds each stage of the frame took (None where a reader's file lacks one).

    Attributes:
        capture: From the frame's arrival to the loop picking it up.
        detect: Finding faces (all detector runs of the frame).
        gaze: The gaze update.
        draw: Drawing the portrait.
        latency: From the frame's arrival to the portrait on screen.
    """

    capture: float | None = None
    detect: float | None = None
    gaze: float | None = None
    draw: float | None = None
    latency: float | None = None


class TraceLine(_Record):
    """One line of the trace.

    Attributes:
        t: The camera frame's time, seconds (the clip's clock for a replay at full speed).
        seq: Frames processed before this one in the run.
        faces: The faces kept (finite, score 0 … 1).
        viewer: The followed viewer's id, or None.
        angle_raw: Measured angle to the viewer, degrees; None without a viewer.
        angle: Smoothed angle, degrees; None when the gaze update failed.
        index: The gaze asked for, 0 … frame_count - 1 (for a set of one row of open eyes,
            the frame asked for).
        frame_count: How many gazes the portrait has.
        pitch: Vertical gaze of the frame asked for, degrees, + = up (0 for a set of one row).
        lids: Lid phase of the frame asked for, 0 open .. 1 shut (0 for a set without blinks).
        drawn_index: The gaze of the frame drawn for it, 0 … frame_count - 1: ``index`` once
            the asked frame's patch is rendered, until then the nearest rendered frame's.
        drawn_pitch: Vertical gaze of the frame drawn, degrees, + = up.
        drawn_lids: Lid phase of the frame drawn, 0 open .. 1 shut.
        state: The gaze state: ``"tracking"``, ``"holding"`` or ``"idle"``.
        inferences: Detector runs on this frame (0: the room cadence skipped it, see the finder).
        camera: The camera's state (``"running"``, ``"failed"``, ...).
        ms: See :class:`TraceMs`.
    """

    t: float
    seq: int | None = None
    faces: list[TraceFace] | None = None
    viewer: int | None = None
    angle_raw: float | None = None
    angle: float | None = None
    index: int | None = None
    frame_count: int | None = None
    state: str | None = None
    inferences: int | None = None
    camera: str | None = None
    pitch: float | None = None
    lids: float | None = None
    drawn_index: int | None = None
    drawn_pitch: float | None = None
    drawn_lids: float | None = None
    ms: TraceMs | None = None

    @classmethod
    def of(
        cls,
        *,
        t: float,
        seq: int,
        faces: Sequence[Face],
        viewer: int | None,
        angle_raw: float | None,
        angle: float | None,
        index: int,
        frame_count: int,
        state: str,
        inferences: int,
        camera: str,
        ms: dict[str, float],
        pitch: float = 0.0,
        lids: float = 0.0,
        drawn: tuple[int, float, float] | None = None,
    ) -> TraceLine:
        """The line for one processed frame, rounded as written (times 0.1 ms, angles 0.001°).

        ``drawn`` is the frame drawn, ``(gaze index, pitch, lids)``; None: the one asked for.

        Raises:
            ValueError: A figure is NaN or infinite.
        """
        return cls(
            t=round(t, 4),
            seq=seq,
            faces=[
                TraceFace(
                    box=f.box.as_list(),
                    score=round(f.score, 4),
                    eyes=[f.right_eye.as_list(), f.left_eye.as_list()],
                )
                for f in faces
            ],
            viewer=viewer,
            angle_raw=None if angle_raw is None else round(float(angle_raw), 3),
            angle=None if angle is None else round(float(angle), 3),
            index=index,
            frame_count=frame_count,
            state=state,
            inferences=inferences,
            camera=camera,
            pitch=round(float(pitch), 3),
            lids=round(float(lids), 4),
            drawn_index=index if drawn is None else drawn[0],
            drawn_pitch=round(float(pitch if drawn is None else drawn[1]), 3),
            drawn_lids=round(float(lids if drawn is None else drawn[2]), 4),
            ms=TraceMs(**{k: round(v, 3) for k, v in ms.items()}),
        )


class TraceLineError(ValueError):
    """A trace line that cannot be used; the message says why in a few words."""


def parse_line(row: Any) -> TraceLine:
    """Validate one decoded JSON line against :class:`TraceLine`.

    Raises:
        TraceLineError: Not an object, no ``t``, or a known key with a bad value.
    """
    if not isinstance(row, dict):
        raise TraceLineError(f"a JSON {type(row).__name__}, not an object")
    if row.get("t") is None:
        raise TraceLineError("no 't'")
    try:
        return TraceLine.model_validate(row, strict=True)
    except ValidationError as err:
        raise TraceLineError(format_validation_error(None, row, err)[0]) from None


class TraceWriter:
    """Writes a trace, one compact JSON line per :class:`TraceLine`.

    The file is opened (truncated) when the writer is made. Errors are raised to the caller,
    which stops tracing and carries on.

    Args:
        path: The JSON Lines file.

    Raises:
        OSError: The file cannot be opened.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] = path.open("w", encoding="utf-8")

    def write(self, line: TraceLine) -> None:
        """Append one line (buffered; see :meth:`flush`).

        Raises:
            OSError: The file cannot be written.
        """
        self._file.write(json.dumps(line.model_dump(mode="json"), separators=(",", ":")) + "\n")

    def flush(self) -> None:
        """Hand what is buffered to the system.

        Raises:
            OSError: The file cannot be written.
        """
        self._file.flush()

    def close(self) -> None:
        """Flush and close.

        Raises:
            OSError: The file cannot be written.
        """
        self._file.close()
