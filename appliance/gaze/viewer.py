"""Which visitor to follow: faces matched frame to frame into tracks, and a policy.

A *track* is one visitor followed over time: each update matches the new faces to the known
tracks by position (centre distance in box widths, wider after a gap) and size (at most a
factor :data:`MATCH_SIZE_RATIO` apart); unmatched faces start new tracks and tracks unseen
for ``lost_after_s`` are forgotten. The *viewer* is the track the eyes follow. Policies:

* ``sticky``: keep the viewer while it is seen (or unseen for less than ``lost_after_s``);
  another visitor takes over only if their face stays markedly larger (closer) - by
  ``switch_margin`` - for ``switch_time_s``.
* ``nearest``: the largest face; another takes over as soon as it is larger by
  ``switch_margin`` (smoothed sizes, so two still visitors do not swap).
* ``central``: the visitor nearest straight ahead of the portrait; another takes over when
  it stays ``switch_angle_deg`` nearer for ``switch_time_s``.

Without a viewer, the best visible track by the policy (largest face; or most central) that
has been seen at least :data:`MIN_HITS` times becomes the viewer: a single false detection
never moves the eyes. A viewer missed in a frame where the only face is left unmatched
and about as large (within :data:`LONE_SIZE_RATIO`) continues with that face: most likely the
same person moved further than the match allows (a quick step, a low frame rate, a missed
detection while walking). The price: a newcomer of similar size whose first detection falls
exactly on a frame where the viewer is missed is taken for the viewer (one switch, never a
swap back and forth).

These tracks are the appliance's one memory of its visitors: the finder's follow crop is
placed from them too (:meth:`Viewers.follow`: the viewer, or the best face of the last frame,
with its last step).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from appliance.gaze.geometry import eye_px
from appliance.types import Box, Face, Follow

AngleFn = Callable[[Face, float], float]
"""Gaze angle in degrees toward a face, given its smoothed eye spacing in pixels."""

MIN_HITS = 2
"""Detections a new track needs before it can become the viewer."""
SIZE_TAU_S = 0.4
"""Time constant smoothing each track's face size and eye spacing, seconds (the distance
estimate from a few pixels of eye spacing is noisy; people move closer slowly)."""
MATCH_GATE = 1.0
"""A face matches a track if its centre moved less than this many box widths ..."""
MATCH_GATE_PER_S = 6.0
"""... plus this many box widths per second since the track was last seen (at most 1 s): a
face box is about 16 cm wide, so 6 box widths/s is a brisk walk at any distance."""
MATCH_SIZE_RATIO = 2.5
"""... and its size (``sqrt(box area)``) is within this factor of the track's."""
LONE_SIZE_RATIO = 2.0
"""A lone face continues a missed viewer only if its size is within this factor of theirs."""


@dataclass(slots=True)
class Track:
    """One visitor followed over time.

    Attributes:
        id: Stable id, 1, 2, ... in order of appearance.
        face: The latest face (image pixels).
        angle: The latest gaze angle to this visitor, degrees.
        size: Smoothed face size ``sqrt(box area)``, pixels (larger = closer).
        eye_px: Smoothed eye spacing, pixels (gives the distance).
        first_seen: Time of the first detection, seconds.
        last_seen: Time of the latest detection, seconds.
        hits: Number of detections.
        ahead_since: Since when this track has beaten the viewer by the margin (or None).
        update: The :class:`Viewers` update (frame) of the latest detection, counted from 1.
        step: The face centre's move, (dx, dy) pixels, between the latest two detections when
            they were in consecutive updates; (0, 0) otherwise.
    """

    id: int
    face: Face
    angle: float
    size: float
    eye_px: float
    first_seen: float
    last_seen: float
    hits: int = 1
    ahead_since: float | None = field(default=None)
    update: int = 0
    step: tuple[float, float] = (0.0, 0.0)

    @property
    def box(self) -> Box:
        """The latest face box."""
        return self.face.box

    def see(self, face: Face, t: float, angle_fn: AngleFn, update: int) -> None:
        """Record a new detection of this visitor at time ``t`` (update ``update``)."""
        old, new = self.face.box.center, face.box.center
        self.step = (new.x - old.x, new.y - old.y) if update == self.update + 1 else (0.0, 0.0)
        self.update = update
        dt = max(0.0, t - self.last_seen)
        a = 1.0 - math.exp(-dt / SIZE_TAU_S) if dt > 0 else 1.0 / (self.hits + 1)
        self.size += a * (_size(face) - self.size)
        self.eye_px += a * (eye_px(face) - self.eye_px)
        self.face, self.last_seen = face, t
        self.angle = angle_fn(face, self.eye_px)
        self.hits += 1


def _size(face: Face) -> float:
    return math.sqrt(max(face.box.area, 1e-6))


def _cost(track: Track, face: Face, t: float) -> float:
    """Centre distance in box widths; inf outside the gate or when the sizes differ too much."""
    tb, fb = track.box, face.box
    width = max(tb.width, fb.width, 1.0)
    ratio = _size(face) / max(track.size, 1e-6)
    if not 1.0 / MATCH_SIZE_RATIO <= ratio <= MATCH_SIZE_RATIO:
        return math.inf
    d = math.hypot(tb.center.x - fb.center.x, tb.center.y - fb.center.y) / width
    gate = MATCH_GATE + MATCH_GATE_PER_S * min(max(t - track.last_seen, 0.0), 1.0)
    return d if d <= gate else math.inf


class Viewers:
    """Tracks visitors and chooses the viewer.

    Args:
        policy: ``"sticky"``, ``"nearest"`` or ``"central"``.
        lost_after_s: Tracks unseen this long are forgotten, seconds.
        switch_margin: Size advantage (fraction) another face needs to take over.
        switch_angle_deg: ``central``: how much nearer straight ahead another must be, degrees.
        switch_time_s: ``sticky``/``central``: how long the advantage must last, seconds.
        hold_s: A viewer missed for less than this may continue with a lone unmatched face.
    """

    def __init__(
        self,
        policy: str,
        lost_after_s: float,
        switch_margin: float,
        switch_angle_deg: float,
        switch_time_s: float,
        hold_s: float,
    ) -> None:
        if policy not in ("sticky", "nearest", "central"):
            raise ValueError(f"unknown policy {policy!r}; expected sticky, nearest or central")
        self.policy = policy
        self.lost_after_s = lost_after_s
        self.switch_margin = switch_margin
        self.switch_angle_deg = switch_angle_deg
        self.switch_time_s = switch_time_s
        self.hold_s = hold_s
        self.tracks: list[Track] = []
        self.viewer: Track | None = None
        self.switches = 0
        self._next_id = 1
        self._update = 0

    def update(self, faces: list[Face], t: float, angle_fn: AngleFn) -> tuple[Track | None, bool]:
        """Match this frame's faces and (re)choose the viewer.

        Args:
            faces: Every usable face in the frame.
            t: Time of the frame, seconds.
            angle_fn: Gives the gaze angle toward a face from its smoothed eye spacing.

        Returns:
            ``(viewer track or None, True if the viewer was seen in this frame)``.
        """
        self._update += 1
        seen = self._match(faces, t, angle_fn)
        self.tracks = [
            tr for tr in self.tracks if tr.last_seen == t or t - tr.last_seen < self.lost_after_s
        ]
        if self.viewer is not None and self.viewer not in self.tracks:
            self.viewer = None
        visible = [tr for tr in self.tracks if tr.id in seen]
        if self.viewer is None:
            ready = [tr for tr in visible if tr.hits >= MIN_HITS]
            if ready:
                self._set_viewer(max(ready, key=self._merit))
        elif self.viewer.id in seen:
            self._challenge(visible, t)
        viewer = self.viewer
        return viewer, viewer is not None and viewer.id in seen

    def follow(self, shown: bool) -> Follow | None:
        """Whom the finder's follow crop should search around in the next frame.

        Args:
            shown: True while the viewer is followed (seen within ``hold_s``).

        Returns:
            The viewer (its step only if it was seen in the last update), or else the best
            scored face seen in the last update (``viewer=False``), or None.
        """
        v = self.viewer
        if shown and v is not None:
            return Follow(v.box, v.step if v.update == self._update else (0.0, 0.0))
        latest = [tr for tr in self.tracks if tr.update == self._update]
        if not latest:
            return None
        best = max(latest, key=lambda tr: tr.face.score)
        return Follow(best.box, best.step, viewer=False)

    def _merit(self, tr: Track) -> float:
        return -abs(tr.angle) if self.policy == "central" else tr.size

    def _set_viewer(self, tr: Track) -> None:
        if self.viewer is not None and tr is not self.viewer:
            self.switches += 1
        self.viewer = tr
        for other in self.tracks:
            other.ahead_since = None

    def _ahead(self, tr: Track, viewer: Track) -> bool:
        if self.policy == "central":
            return abs(tr.angle) + self.switch_angle_deg <= abs(viewer.angle)
        return tr.size >= (1.0 + self.switch_margin) * viewer.size

    def _challenge(self, visible: list[Track], t: float) -> None:
        viewer = self.viewer
        assert viewer is not None
        winners: list[Track] = []
        for tr in visible:
            if tr is viewer:
                continue
            if tr.hits < MIN_HITS or not self._ahead(tr, viewer):
                tr.ahead_since = None
                continue
            if tr.ahead_since is None:
                tr.ahead_since = t
            wait = 0.0 if self.policy == "nearest" else self.switch_time_s
            if t - tr.ahead_since >= wait:
                winners.append(tr)
        if winners:
            self._set_viewer(max(winners, key=self._merit))

    def _match(self, faces: list[Face], t: float, angle_fn: AngleFn) -> set[int]:
        pairs = []
        for ti, tr in enumerate(self.tracks):
            for fi, face in enumerate(faces):
                c = _cost(tr, face, t)
                if c < math.inf:
                    pairs.append((c, ti, fi))
        pairs.sort()
        used_t: set[int] = set()
        used_f: set[int] = set()
        seen: set[int] = set()
        for _, ti, fi in pairs:
            if ti in used_t or fi in used_f:
                continue
            used_t.add(ti)
            used_f.add(fi)
            tr = self.tracks[ti]
            tr.see(faces[fi], t, angle_fn, self._update)
            seen.add(tr.id)
        free = [fi for fi in range(len(faces)) if fi not in used_f]
        v = self.viewer
        if (
            v is not None
            and v.id not in seen
            and len(faces) == 1
            and free == [0]
            and t - v.last_seen <= self.hold_s
            and 1.0 / LONE_SIZE_RATIO <= _size(faces[0]) / max(v.size, 1e-6) <= LONE_SIZE_RATIO
        ):
            face = faces[0]
            v.size, v.eye_px = _size(face), eye_px(face)
            v.see(face, t, angle_fn, self._update)
            seen.add(v.id)
            free = []
        for fi in free:
            face = faces[fi]
            e = eye_px(face)
            angle = angle_fn(face, e)
            tr = Track(self._next_id, face, angle, _size(face), e, t, t, update=self._update)
            self._next_id += 1
            self.tracks.append(tr)
            seen.add(tr.id)
        return seen
