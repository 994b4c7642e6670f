"""Gaze: from the faces in a camera frame to the portrait frame that looks at the visitor.

Pure logic (no camera, display or interpreter imports). Each :meth:`Gaze.update` takes the
faces found in one camera frame and returns a :class:`GazeRecord`:

1. **Which viewer** - faces are matched into tracks and a policy picks the one to follow
   (:mod:`appliance.gaze.viewer`).
2. **Where to look** - the viewer's eye midpoint becomes the angle from the portrait's eyes to
   the visitor's, with real camera geometry, or the original linear mapping
   (:mod:`appliance.gaze.geometry`, which states the sign conventions).
3. **Calm** - the angle is smoothed (:mod:`appliance.gaze.filters`) and the frame index
   changes only past a hysteresis margin.
4. **Nobody there** - the gaze holds over missed detections, then eases back to the rest
   frame and optionally glances around (:mod:`appliance.gaze.idle`).

States: ``tracking`` (the viewer is seen in this frame), ``holding`` (the viewer or the last
one was seen less than ``idle_after_s`` ago; the eyes stay where they were), ``idle`` (nobody
for ``idle_after_s``: returning to or at rest, or glancing).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

from appliance.config import CameraConfig, GazeConfig
from appliance.finder import UsableFaces, usable_faces
from appliance.gaze.filters import make_filter
from appliance.gaze.geometry import (
    Camera,
    even_angles,
    hysteresis_index,
    linear_angle,
    locate,
)
from appliance.gaze.idle import Glancer, ease
from appliance.gaze.viewer import Viewers
from appliance.optics import CameraView
from appliance.types import Box, Face, Follow

__all__ = ["Gaze", "GazeRecord", "GazeState"]

GazeState = Literal["tracking", "holding", "idle"]


@dataclass(frozen=True, slots=True)
class GazeRecord:
    """The result of one gaze update (one line of the trace).

    Attributes:
        t: Time of the update, seconds (the clock the caller passed).
        viewer: Id of the visitor followed (1, 2, ... in order of appearance), or None when
            nobody is followed (nobody seen, or the viewer missed for ``hold_s`` or more).
        viewer_box: The viewer's latest face box in image pixels (None with ``viewer``).
        angle_raw: Gaze angle to the viewer measured in this frame, degrees (negative =
            visitor's left), before smoothing and clamping; None if the viewer was not seen.
        angle: The smoothed gaze angle the frame is chosen from, degrees, within the frame
            set's range: ``angle_raw`` times ``[gaze] gain``, smoothed and clamped.
        index: The frame to show, ``0 <= index < frame count``; 0 looks toward the visitor's
            left.
        state: ``"tracking"``, ``"holding"`` or ``"idle"``.
        pitch_raw: Vertical angle to the viewer's eyes measured in this frame, degrees (+ =
            above the portrait's eyes); None if the viewer was not seen.
        pitch: The smoothed vertical angle the row is chosen from, degrees, within the rows'
            range (0 for a set of one row).
        row: The row to show, ``0 <= row < rows``; 0 looks lowest.
        follow: Whom the finder's follow crop searches around in the next frame, from the
            viewer tracks (:meth:`~appliance.gaze.viewer.Viewers.follow`), or None.
    """

    t: float
    viewer: int | None
    viewer_box: Box | None
    angle_raw: float | None
    angle: float
    index: int
    state: GazeState
    pitch_raw: float | None = None
    pitch: float = 0.0
    row: int = 0
    follow: Follow | None = None


class Gaze:
    """Turns the faces of each camera frame into the portrait frame to show.

    Args:
        config: The ``[gaze]`` settings.
        camera: The ``[camera]`` settings (``hfov_deg``, ``mirror``, ``offset_x_mm``,
            ``offset_y_mm`` are used).
        angles: Each frame's gaze angle in degrees, strictly increasing (negative = toward the
            visitor's left), or the frame count for a set without angles: they are then spread
            evenly over ``±config.angle_range_deg``.
        rest_index: The frame shown when nobody is there, ``0 <= rest_index < count``.
        seed: Seed for the idle glances (deterministic for a given seed).
        pitches: Each row's vertical gaze in degrees, strictly increasing (+ = up); one row
            (the default) chooses nothing. The row follows the viewer's eye height with the
            same smoothing and hysteresis as the gaze angle, and eases back to ``rest_row``.
        rest_row: The row shown when nobody is there.
        view: What the camera shows (:class:`~appliance.optics.CameraView`): its field of
            view replaces ``camera.hfov_deg``, and its tilt
            (:attr:`~appliance.optics.CameraView.tilt_deg`, degrees down, from ``[finder]
            camera_tilt_deg`` with or without ``camera_height_m``) levels the camera, so the
            visitor's eye height, and so the row, is taken from the levelled camera
            (:mod:`appliance.gaze.geometry`). None: the lens's whole field, a level camera. The
            app passes a new one with :meth:`set_view` when the camera reports another crop.

    Raises:
        ValueError: Fewer than 2 frames, angles not finite or not increasing, or the rest
            index out of range.
    """

    def __init__(
        self,
        config: GazeConfig,
        camera: CameraConfig,
        angles: Sequence[float] | int,
        rest_index: int,
        seed: int = 0,
        pitches: Sequence[float] = (0.0,),
        rest_row: int = 0,
        view: CameraView | None = None,
    ) -> None:
        self.pitches = tuple(float(p) for p in pitches)
        pairs = zip(self.pitches, self.pitches[1:], strict=False)
        if not self.pitches or any(b <= a for a, b in pairs):
            raise ValueError(f"row pitches must be increasing: {self.pitches}")
        if not 0 <= rest_row < len(self.pitches):
            raise ValueError(f"rest_row {rest_row} out of range 0..{len(self.pitches) - 1}")
        self.rest_row = self.row = rest_row
        self.pitch = self.pitches[rest_row]
        if isinstance(angles, int):
            angles = even_angles(angles, config.angle_range_deg)
        self.angles = tuple(float(a) for a in angles)
        if len(self.angles) < 2:
            raise ValueError(f"gaze needs at least 2 frames, got {len(self.angles)}")
        if not all(math.isfinite(a) for a in self.angles) or any(
            b <= a for a, b in zip(self.angles, self.angles[1:], strict=False)
        ):
            raise ValueError(f"frame angles must be finite and increasing: {self.angles}")
        if not 0 <= rest_index < len(self.angles):
            raise ValueError(f"rest_index {rest_index} out of range 0..{len(self.angles) - 1}")
        self.config = config
        self.camera = Camera(
            hfov_deg=camera.hfov_deg if view is None else view.hfov_deg,
            mirror=camera.mirror,
            offset_x_mm=camera.offset_x_mm,
            offset_y_mm=camera.offset_y_mm,
            ipd_mm=config.ipd_mm,
            tilt_deg=0.0 if view is None else view.tilt_deg,
        )
        self.rest_index = rest_index
        self.rest_angle = self.angles[rest_index]
        # The same smoothing for the angle and for the pitch (the row).
        self.filter, self.pitch_filter = (
            make_filter(
                config.filter,
                tau_s=config.tau_s,
                min_cutoff=config.min_cutoff,
                beta=config.beta,
                d_cutoff=config.d_cutoff,
            )
            for _ in range(2)
        )
        self.viewers = Viewers(
            config.policy,
            lost_after_s=config.lost_after_s,
            switch_margin=config.switch_margin,
            switch_angle_deg=config.switch_angle_deg,
            switch_time_s=config.switch_time_s,
            hold_s=config.hold_s,
        )
        self.glancer = (
            Glancer(
                self.rest_angle,
                self.angles[0],
                self.angles[-1],
                config.glance_interval_s,
                config.glance_hold_s,
                config.glance_range_deg,
                config.glance_move_s,
                seed,
            )
            if config.glance
            else None
        )
        self.angle = self.rest_angle
        self.index = rest_index
        self.state: GazeState = "idle"
        self._t = 0.0
        self._last_seen = -math.inf
        self._idle_from = self.rest_angle
        self._pitch_from: float | None = None
        self._still_at: float | None = None  # 'contact': where the viewer stands, degrees
        self._still_since = 0.0
        self._glance_armed = False

    def set_view(self, view: CameraView) -> None:
        """Use the field of view and the tilt of ``view`` (the camera reported another crop).

        Args:
            view: The new view; its ``place`` (and so its tilt) is the one the gaze was built
                with when it comes from :meth:`~appliance.optics.CameraView.seen`.
        """
        self.camera = replace(self.camera, hfov_deg=view.hfov_deg, tilt_deg=view.tilt_deg)

    @property
    def switches(self) -> int:
        """How many times the viewer changed from one visitor to another."""
        return self.viewers.switches

    def angle_of(
        self, face: Face, image_size: tuple[int, int], eye_spacing_px: float | None = None
    ) -> float:
        """The raw gaze angle toward a face, degrees (negative = visitor's left).

        Args:
            face: A face in the pixels of an image ``image_size`` = (width, height).
            image_size: Width and height of that image, pixels.
            eye_spacing_px: Eye spacing to take the distance from (default: the face's).
        """
        if self.config.mode == "linear":
            return linear_angle(face, image_size[0], self.camera, self.angles)
        return locate(face, image_size, self.camera, eye_spacing_px).angle_deg

    def update(self, faces: Sequence[Face], t: float, image_size: tuple[int, int]) -> GazeRecord:
        """Take the faces of one camera frame; return where the portrait looks.

        Never raises on bad input: faces with non-finite or empty geometry are ignored, and a
        non-finite time repeats the previous one.

        Args:
            faces: Faces found in the frame, in its pixels (any order).
            t: Time of the frame, seconds (monotonic or the clip's clock).
            image_size: ``(width, height)`` of the frame in pixels.

        Returns:
            The record for this frame.
        """
        if not math.isfinite(t):
            t = self._t
        prev_t, self._t = self._t, t
        usable: list[Face] = []
        if image_size[0] > 0 and image_size[1] > 0:
            usable = faces if isinstance(faces, UsableFaces) else usable_faces(faces)[0]

        def angle_fn(face: Face, eye_spacing_px: float) -> float:
            return self.angle_of(face, image_size, eye_spacing_px)

        viewer, seen = self.viewers.update(usable, t, angle_fn)
        cfg = self.config
        angle_raw: float | None = None
        pitch_raw: float | None = None
        if viewer is not None and seen:
            angle_raw = viewer.angle
            turn = cfg.gain * angle_raw * self._contact(t, angle_raw)
            if self.filter.value is None or self.state == "idle":
                self.filter.reset(min(prev_t, t), self.angle)
                self.pitch_filter.reset(min(prev_t, t), self.pitch)
            target = min(max(turn, self.angles[0]), self.angles[-1])
            self.angle = self.filter.update(t, target)
            if len(self.pitches) > 1:
                pitch_raw = self.pitch_of(viewer.face, image_size)
                level = min(max(cfg.gain * pitch_raw, self.pitches[0]), self.pitches[-1])
                self.pitch = self.pitch_filter.update(t, level)
            self._last_seen = t
            self.state = "tracking"
        elif t - self._last_seen < cfg.idle_after_s:
            self.state = "holding"
        else:
            if self.state != "idle":
                self._idle_from = self.angle
                self._pitch_from = self.pitch
                self._still_at = None
                self._glance_armed = False
            self.state = "idle"
            self.angle = self._idle_angle(t)
            if len(self.pitches) > 1:
                self.pitch = self._idle_pitch(t)
        self.index = hysteresis_index(
            self.angles, self.index, self.angle, cfg.hysteresis, cfg.hysteresis_unit
        )
        if len(self.pitches) > 1:
            self.row = hysteresis_index(
                self.pitches, self.row, self.pitch, cfg.hysteresis, cfg.hysteresis_unit
            )
        shown = viewer is not None and t - viewer.last_seen < max(cfg.hold_s, 1e-9)
        return GazeRecord(
            t=t,
            viewer=viewer.id if shown and viewer is not None else None,
            viewer_box=viewer.box if shown and viewer is not None else None,
            angle_raw=angle_raw,
            angle=self.angle,
            index=self.index,
            state=self.state,
            pitch_raw=pitch_raw,
            pitch=self.pitch,
            row=self.row,
            follow=self.viewers.follow(shown),
        )

    def _contact(self, t: float, angle_raw: float) -> float:
        """The fraction of the turn kept, 0..1.

        1 with ``style = "follow"``; with ``"contact"``, easing to 0 (a frontal gaze) over
        ``contact_ease_s`` once the viewer has stood still (within ``contact_move_deg``) for
        ``contact_after_s``, and 1 again as soon as they move.
        """
        cfg = self.config
        if cfg.style != "contact":
            return 1.0
        if self._still_at is None or abs(angle_raw - self._still_at) > cfg.contact_move_deg:
            self._still_at, self._still_since = angle_raw, t
        start = self._still_since + cfg.contact_after_s
        return 1.0 - ease(0.0, 1.0, start, cfg.contact_ease_s, t) if t >= start else 1.0

    def pitch_of(self, face: Face, image_size: tuple[int, int]) -> float:
        """The raw vertical angle toward a face's eyes, degrees (+ = above the portrait's)."""
        return locate(face, image_size, self.camera).pitch_deg

    def _idle_pitch(self, t: float) -> float:
        """Back to the rest row's pitch over ``idle_return_s`` (glances stay level)."""
        cfg = self.config
        start = self._last_seen + cfg.idle_after_s
        if not math.isfinite(start):
            return self.pitches[self.rest_row]
        if self._pitch_from is None:
            self._pitch_from = self.pitch
        return ease(self._pitch_from, self.pitches[self.rest_row], start, cfg.idle_return_s, t)

    def _idle_angle(self, t: float) -> float:
        cfg = self.config
        start = self._last_seen + cfg.idle_after_s
        if not math.isfinite(start):
            start = -math.inf
        back = start + cfg.idle_return_s
        if t < back:
            return ease(self._idle_from, self.rest_angle, start, cfg.idle_return_s, t)
        if self.glancer is None:
            return self.rest_angle
        if not self._glance_armed:
            self.glancer.restart(back if math.isfinite(back) else t)
            self._glance_armed = True
        return self.glancer.angle(t)
