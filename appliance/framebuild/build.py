"""``monalisa frames build``: the synthesize and blend pipelines end to end.

Both write into an output folder: ``frame_NN.png`` (index 0 = the portrait looks toward the
visitor's left, i.e. its irises at the image's left), ``frames.toml`` and ``contact_sheet.png``.
Same inputs → byte-identical outputs.

Bounded by the eyes, not the canvas: the painting is decoded once and never copied whole; the
work (eye rendering, head blending) is done on the eye or head region at full resolution, and
each frame becomes its patch, the rectangle where it differs from the painting, written as soon
as it is made (frames with the same pixels share one file). Peak memory is the painting once
plus the region's working arrays, whatever the number of frames; time grows with the region.

Nothing is lost on failure: every file is written into a temporary sibling of the output
folder and moved in only at the end, so a rebuild that fails (no face, a bad head frame, a full
disk) leaves the old set as it was.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from tqdm import tqdm

from appliance import __version__
from appliance.framebuild import FrameBuildError, NoFaceError
from appliance.framebuild.blend import (
    DEFAULT_J,
    DEFAULT_K,
    MAX_SHIFT_FRACTION,
    ColourMatch,
    blend_frame,
    head_box_from_faces,
    head_shift,
    head_similarity,
    iris_offset,
    list_heads,
    load_heads,
    mesh_offset,
    motion_mask,
    offsets_to_angles,
    parse_box,
    picked_angles,
    read_image,
    refined,
    residual_shift,
    shifted,
    sigmoid_alpha,
    undo_similarity,
    uneven_sweep,
)
from appliance.framebuild.contact import Strip, contact_sheet
from appliance.framebuild.eyemodel import find_eyes, mesh_at
from appliance.framebuild.eyes import (
    detect_face,
    eyes_left_to_right,
    parse_eyes,
)
from appliance.framebuild.output import (
    CONTACT_SHEET,
    check_out_dir,
    commit_out_dir,
    region_patch,
    rounded,
    staging_dir,
)
from appliance.framebuild.synthesize import (
    LID_FOLLOW,
    EyeRenderer,
    iris_shifts,
    pitch_shift,
    synthesize_region,
)
from appliance.frames import EMPTY_PATCH, Patch, frame_name
from appliance.framewrite import PatchWriter, SetMeta, write_png
from appliance.types import Box, Face, Point


class Progress:
    """A progress bar (tqdm) on ``stream`` (stderr), drawn only when it is a terminal."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        out = stream if stream is not None else sys.stderr
        self.bar = tqdm(
            total=max(1, total),
            desc=label,
            file=out,
            disable=not bool(getattr(out, "isatty", lambda: False)()),
            leave=True,
            dynamic_ncols=True,
        )

    def step(self, n: int = 1) -> None:
        """Advance by ``n``; the bar ends its line when it is full."""
        self.bar.update(n)
        if self.bar.n >= self.bar.total:
            self.bar.close()


@dataclass
class BuildOptions:
    """Options of ``monalisa frames build``.

    Attributes:
        painting: The portrait image file.
        out: Output folder (created; must be empty unless ``force``).
        mode: ``"synthesize"`` or ``"blend"``.
        count: Number of gazes (frames per row and lid phase), >= 2 (default 33).
        max_angle: Synthesize: gaze range ±degrees, in (0, 60].
        rows: Synthesize: rows of vertical gaze, odd, 1..15 (default 5; 1 = level only).
        max_pitch: Synthesize: vertical gaze range ±degrees, in (0, 30] (default 15).
        lid_phases: Synthesize: lid phases from open to shut, 1..8 (default 4; 1 = no
            blinks).
        eyes: ``"X1,Y1,X2,Y2"`` eye points in the painting, or None to use the detector.
        heads: Blend: folder of head frames.
        head_box: Blend: ``"X0,Y0,X1,Y1"`` in the painting, or None to match faces.
        blend_j: Blend: sigmoid steepness for a 512-pixel head.
        blend_k: Blend: sigmoid midpoint for a 512-pixel head, pixels.
        colour_match: Blend: match the head frames' colours to the painting.
        stabilise: Blend: undo the head frames' small movements against the first one.
        force: Replace an existing frame set in ``out``.
        lossless: Keep every patch lossless (PNG) even for a painting with a preview, whose
            patches are otherwise lossy WebP (:data:`~appliance.frames.PATCH_QUALITY`).
    """

    painting: Path
    out: Path
    mode: str = "synthesize"
    count: int = 33
    max_angle: float = 30.0
    rows: int = 5
    max_pitch: float = 15.0
    lid_phases: int = 4
    eyes: str | None = None
    heads: Path | None = None
    head_box: str | None = None
    blend_j: float = DEFAULT_J
    blend_k: float = DEFAULT_K
    colour_match: bool = True
    stabilise: bool = True
    force: bool = False
    lossless: bool = False
    progress: TextIO | None = field(default=None, repr=False)


@dataclass(frozen=True)
class BuildResult:
    """What a build wrote.

    Attributes:
        out: The output folder.
        files: Frame file names in index order (every frame of the grid).
        angles: Angle of each gaze, degrees (one per gaze, not per frame).
        rest_index: The rest frame.
        head_box: The region that changes.
        contact_sheet: Path of the contact sheet.
        warnings: One line each about what the build left as it found it (e.g. a head frame
            moved too far to be held still).
        lossy: True when the patches were written as lossy WebP (a painting larger than
            :data:`~appliance.frames.PREVIEW_MAX`, without ``--lossless``).
    """

    out: Path
    files: tuple[str, ...]
    angles: tuple[float, ...]
    rest_index: int
    head_box: Box
    contact_sheet: Path
    warnings: tuple[str, ...] = ()
    lossy: bool = False


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_common(opts: BuildOptions) -> np.ndarray:
    if opts.count < 2:
        raise FrameBuildError(f"--count {opts.count}: need at least 2 frames")
    if opts.count > 999:
        raise FrameBuildError(f"--count {opts.count}: at most 999 frames")
    if not opts.painting.is_file():
        raise FrameBuildError(f"{opts.painting}: no such painting file")
    painting = read_image(opts.painting)
    # Refuse a non-empty folder before any slow work (nothing is removed until the end).
    check_out_dir(opts.out, opts.force)
    return painting


def _eye_points(
    painting: np.ndarray, opts: BuildOptions, finder: Callable[..., tuple[Point, Point]]
) -> tuple[tuple[Point, Point], str]:
    if opts.eyes:
        return parse_eyes(opts.eyes), "--eyes"
    return finder(painting, opts.painting), "detector"


def detect_eyes_with(
    face_finder: Callable[[np.ndarray, Any], Face],
) -> Callable[[np.ndarray, Any], tuple[Point, Point]]:
    """Adapt a face finder into an eye finder (eye points sorted left to right)."""

    def find(image: np.ndarray, source: Any) -> tuple[Point, Point]:
        return eyes_left_to_right(face_finder(image, source))

    return find


@dataclass(frozen=True)
class Grid:
    """The frames of a set as (gaze, row, lid phase), in :mod:`appliance.frames`' order.

    Attributes:
        gazes: Horizontal gazes per row and phase.
        pitches: Each row's vertical gaze, degrees, increasing.
        phases_at: Each lid phase, 0 open .. 1 shut, increasing.
    """

    gazes: int
    pitches: tuple[float, ...]
    phases_at: tuple[float, ...]

    @property
    def rows(self) -> int:
        """Number of rows."""
        return len(self.pitches)

    @property
    def phases(self) -> int:
        """Number of lid phases."""
        return len(self.phases_at)

    @property
    def count(self) -> int:
        """Number of frames."""
        return self.gazes * self.rows * self.phases

    def place(self, i: int) -> tuple[int, int, int]:
        """Frame ``i`` as ``(gaze, row, lid phase)``."""
        block, gaze = divmod(i, self.gazes)
        row, lid = divmod(block, self.phases)
        return gaze, row, lid

    def index(self, gaze: int, row: int, lid: int) -> int:
        """The frame index of ``(gaze, row, lid phase)``."""
        return (row * self.phases + lid) * self.gazes + gaze

    def pitch(self, i: int) -> float:
        """Frame ``i``'s vertical gaze, degrees."""
        return self.pitches[self.place(i)[1]]

    def lids(self, i: int) -> float:
        """Frame ``i``'s lid phase, 0 open .. 1 shut."""
        return self.phases_at[self.place(i)[2]]

    def level_row(self) -> int:
        """The row nearest a level gaze."""
        return int(np.argmin(np.abs(np.asarray(self.pitches)) + 1e-9 * np.arange(self.rows)))

    def strips(self, rest: int) -> list[Strip]:
        """The contact sheet's extra zoom strips: the rows and one blink at the rest gaze."""
        gaze, row, _ = self.place(rest)
        out: list[Strip] = []
        if self.rows > 1:
            rows = [self.index(gaze, r, 0) for r in range(self.rows)]
            labels = [f"{i:03d}  pitch {self.pitch(i):+.1f}°" for i in rows]
            out.append(Strip("rows, eyes open (rest gaze)", tuple(zip(rows, labels, strict=True))))
        if self.phases > 1:
            lids = [self.index(gaze, row, k) for k in range(self.phases)]
            labels = [f"{i:03d}  lids {self.lids(i):.2f}" for i in lids]
            out.append(
                Strip("a blink (rest gaze, rest row)", tuple(zip(lids, labels, strict=True)))
            )
        return out


def _rest_index(angles: Sequence[float]) -> int:
    return int(np.argmin(np.abs(np.asarray(angles)) + 1e-9 * np.arange(len(angles))))


def _union(boxes: Sequence[tuple[int, int, int, int]]) -> tuple[int, int, int, int]:
    return (
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    )


@dataclass
class Frames:
    """What a build's set holds, for :func:`_build_set`.

    Attributes:
        angles: Each gaze's angle, degrees.
        grid: The rows and lid phases.
        rest: The rest frame's index.
        eye_box: The contact sheet's zoomed region, image pixels.
        build: The ``[build]`` table.
        fallback_box: The region that changes when every frame equals the base.
        head_box: The region that changes, or None for the patches' own box.
        order: The order to make the frames in (every index once), or None for index order.
    """

    angles: Sequence[float]
    grid: Grid
    rest: int
    eye_box: Box
    build: dict[str, Any]
    fallback_box: Box
    head_box: Box | None = None
    order: Sequence[int] | None = None


def _build_set(
    opts: BuildOptions,
    painting: np.ndarray,
    origin: tuple[int, int],
    render: Callable[[int], np.ndarray],
    frames: Frames,
    progress: Progress,
) -> BuildResult:
    """Make every frame, write the set and its contact sheet, atomically.

    The painting becomes the set's base in place (its rest frame's region pasted in), so a
    build holds one full image. Frames are made one at a time over the region only, kept as
    their patch (the rectangle where they differ from the base) and written at once
    (:class:`~appliance.framewrite.PatchWriter`); only the patches the contact sheet shows stay
    in memory. Everything goes into a staging folder moved into place at the end.

    Args:
        opts: The build's options (``out``).
        painting: ``H×W×3`` uint8, writable; becomes the base.
        origin: ``(x0, y0)`` of the region in the painting, pixels.
        render: Frame ``i`` over the region (made from the painting's own pixels, saved
            before this call).
        frames: What the set holds (angles, grid, rest frame, boxes, ``[build]``).
        progress: Advanced once per frame, and twice at the end.
    """
    g = frames.grid
    x0, y0 = origin
    rest = frames.rest
    rest_crop = render(rest)
    h, w = rest_crop.shape[:2]
    painting[y0 : y0 + h, x0 : x0 + w] = rest_crop
    strips = g.strips(rest)
    block = rest - rest % g.gazes
    shown = set(range(block, block + g.gazes)) | {i for st in strips for i, _ in st.frames}
    # The sheet reads only the rest frame's block of gazes and the strips' frames.
    kept: list[Patch] = [EMPTY_PATCH] * g.count
    try:
        with staging_dir(opts.out) as tmp:
            writer = PatchWriter(tmp, g.count, painting, lossless=opts.lossless)
            for i in frames.order if frames.order is not None else range(g.count):
                crop = rest_crop if i == rest else render(i)
                patch = region_patch(painting, crop, x0, y0)
                writer.add(i, patch)
                if i in shown:
                    kept[i] = patch
                progress.step()
            head_box = frames.head_box or writer.box or frames.fallback_box
            meta = SetMeta(
                angles=rounded([frames.angles[i % g.gazes] for i in range(g.count)]),
                rest_index=rest,
                head_box=head_box,
                build=rounded({**frames.build, "patches": "webp" if writer.lossy else "png"}),
                pitches=rounded([g.pitch(i) for i in range(g.count)]) if g.rows > 1 else None,
                lids=rounded([g.lids(i) for i in range(g.count)]) if g.phases > 1 else None,
            )
            writer.finish(meta)
            progress.step()
            sheet = contact_sheet(painting, kept, frames.angles, rest, frames.eye_box, strips)
            write_png(tmp / CONTACT_SHEET, np.asarray(sheet))
            progress.step()
            commit_out_dir(tmp, opts.out)
    except OSError as err:
        raise FrameBuildError(f"--out {opts.out}: cannot write the frame set ({err})") from err
    files = tuple(frame_name(i, g.count) for i in range(g.count))
    return BuildResult(
        opts.out,
        files,
        tuple(frames.angles),
        rest,
        head_box,
        opts.out / CONTACT_SHEET,
        lossy=writer.lossy,
    )


def build_synthesize(
    opts: BuildOptions, face_finder: Callable[[np.ndarray, Any], Face] = detect_face
) -> BuildResult:
    """Build a frame set by moving the painting's irises (CPU only).

    The eyes are modelled by the face mesh (iris, lids), else by the hand-made iris finder.

    Args:
        opts: Build options (``painting``, ``out``, ``count``, ``max_angle``, ``eyes``).
        face_finder: Finds the face when ``opts.eyes`` is not given.

    Raises:
        FrameBuildError: Bad option, unreadable painting, no face or no iris found, or a
            non-empty output folder without ``force``.
    """
    if not 0 < opts.max_angle <= 60:
        raise FrameBuildError(f"--max-angle {opts.max_angle}: must be in (0, 60] degrees")
    if not (1 <= opts.rows <= 15 and opts.rows % 2 == 1):
        raise FrameBuildError(f"--rows {opts.rows}: must be odd, 1..15 (the middle row is level)")
    if not 0 < opts.max_pitch <= 30:
        raise FrameBuildError(f"--max-pitch {opts.max_pitch}: must be in (0, 30] degrees")
    if not 1 <= opts.lid_phases <= 8:
        raise FrameBuildError(f"--lid-phases {opts.lid_phases}: must be 1..8")
    painting = _check_common(opts)
    face: Face | None = None
    if opts.eyes:
        points, source = parse_eyes(opts.eyes), "--eyes"
    else:
        face = face_finder(painting, opts.painting)
        points, source = eyes_left_to_right(face), "detector"
    eyes, modelled_by = find_eyes(painting, points, opts.painting, face)
    angles = [float(a) for a in np.linspace(-opts.max_angle, opts.max_angle, opts.count)]
    shifts, scale = iris_shifts(eyes, angles)
    renderers = [EyeRenderer(painting, e) for e in eyes]
    pitches = np.linspace(-opts.max_pitch, opts.max_pitch, opts.rows) if opts.rows > 1 else [0]
    phases = np.linspace(0.0, 1.0, opts.lid_phases) if opts.lid_phases > 1 else [0]
    grid = Grid(opts.count, tuple(float(p) for p in pitches), tuple(float(v) for v in phases))
    lifts = [pitch_shift(eyes, p) for p in grid.pitches]
    progress = Progress("synthesizing", grid.count + 2, opts.progress)
    # The eyes' crops: all the work, and all that can differ from the painting.
    region = _union([e.roi for e in eyes])
    rx0, ry0, rx1, ry1 = region
    background = painting[ry0:ry1, rx0:rx1].copy()
    rest = grid.index(_rest_index(angles), grid.level_row(), 0)

    def render(i: int) -> np.ndarray:
        gaze, row, lid = grid.place(i)
        return synthesize_region(
            background, (rx0, ry0), renderers, shifts[gaze], lifts[row], grid.phases_at[lid]
        )

    # Every lid phase of a gaze and row right after another: the moved iris is made once.
    order = [
        grid.index(gaze, row, lid)
        for row in range(grid.rows)
        for gaze in range(grid.gazes)
        for lid in range(grid.phases)
    ]
    head_box = Box(*region)
    h, w = painting.shape[:2]
    build: dict[str, Any] = {
        "mode": "synthesize",
        "generator": f"monalisa {__version__}",
        "source": opts.painting.name,
        "source_sha256": _sha256(opts.painting),
        "angle_range": [-opts.max_angle, opts.max_angle],
        "eyes_from": source,
        "eyes_modelled_by": modelled_by,
        "eye_points": [points[0].x, points[0].y, points[1].x, points[1].y],
        "iris_centres": [eyes[0].iris.x, eyes[0].iris.y, eyes[1].iris.x, eyes[1].iris.y],
        "iris_radii": [eyes[0].radius, eyes[1].radius],
        "iris_shift_px": [min(shifts), max(shifts)],
        "shift_scale": scale,
        "pitch_range": [-opts.max_pitch, opts.max_pitch] if opts.rows > 1 else [0.0, 0.0],
        "iris_pitch_shift_px": [min(lifts), max(lifts)],
        "lid_follow": LID_FOLLOW,
    }
    # Zoom strip: both eye openings with a margin of about one iris diameter.
    xs0, ys0, xs1, ys1 = [], [], [], []
    for e in eyes:
        o, m = e.opening, 2.0 * e.radius
        top, bottom = o.lid_extent(0.5 * (o.xl + o.xr))
        xs0.append(o.xl - m)
        xs1.append(o.xr + m)
        ys0.append(min(top, o.yl, o.yr) - m)
        ys1.append(max(bottom, o.yl, o.yr) + m)
    eye_box = Box(
        max(0.0, min(xs0)), max(0.0, min(ys0)), min(float(w), max(xs1)), min(float(h), max(ys1))
    )
    frames = Frames(angles, grid, rest, eye_box, build, head_box, head_box, order)
    return _build_set(opts, painting, (rx0, ry0), render, frames, progress)


def build_blend(
    opts: BuildOptions, face_finder: Callable[[np.ndarray, Any], Face] = detect_face
) -> BuildResult:
    """Build a frame set by blending animated head frames into the painting.

    Args:
        opts: Build options (``painting``, ``out``, ``count``, ``heads``, ``head_box``,
            ``blend_j``, ``blend_k``, ``colour_match``, ``eyes``).
        face_finder: Finds the face in an image (head frames, and the painting when neither
            ``head_box`` nor ``eyes`` is given).

    Raises:
        FrameBuildError: Missing ``--heads``, fewer head frames than ``count``, head frames of
            differing sizes, no face found, or a non-empty output folder without ``force``.
    """
    if opts.heads is None:
        raise FrameBuildError("--mode blend needs --heads DIR (a folder of head frames)")
    if opts.blend_j <= 0 or opts.blend_k <= 0:
        raise FrameBuildError(
            f"--blend-j {opts.blend_j} / --blend-k {opts.blend_k}: both must be positive"
        )
    files = list_heads(opts.heads, opts.count)
    heads = load_heads(files)
    painting = _check_common(opts)
    h, w = painting.shape[:2]
    hh, hw = heads[0].shape[:2]
    progress = Progress("blending", len(heads) + opts.count + 2, opts.progress)
    offsets: list[float] = []
    radii: list[float] = []
    meshes: list[np.ndarray | None] = []
    first: Face | None = None
    for path, head in zip(files, heads, strict=True):
        try:
            face = face_finder(head, path)
        except NoFaceError as err:
            raise FrameBuildError(
                f"{path}: no face found in this head frame (each head frame's gaze is measured "
                "from its face); export clearer head frames (face large, frontal, eyes open) "
                "or remove this one"
            ) from err
        first = first or face
        # Gaze: the irises against the eye corners, from the face mesh; the hand-made iris
        # finder where the mesh sees no face.
        marks = mesh_at(head, eyes_left_to_right(face), face)
        if marks is not None:
            off, rad = mesh_offset(marks.eyes)
            meshes.append(marks.mesh)
        else:
            try:
                off, rad = iris_offset(head, face)
            except FrameBuildError as err:
                raise FrameBuildError(
                    f"{path}: the face mesh sees no face in this head frame, and {err}"
                ) from err
            meshes.append(None)
        offsets.append(off)
        radii.append(rad)
        progress.step()
    assert first is not None
    measured = offsets_to_angles(offsets, float(np.median(radii)))
    if max(measured) - min(measured) < 1.0:
        raise FrameBuildError(
            f"--heads {opts.heads}: the gaze hardly changes across the head frames "
            f"({min(measured):+.1f}° .. {max(measured):+.1f}°); the eyes must sweep"
        )
    # Each frame's angle is the measured gaze of the head frame picked for it.
    picks, angles = picked_angles(measured, opts.count, opts.heads, [f.name for f in files])
    lo, hi = min(measured), max(measured)
    if opts.head_box:
        box = parse_box(opts.head_box, (w, h))
        source = "--head-box"
    else:
        head_points = eyes_left_to_right(first)
        try:
            points, _ = _eye_points(painting, opts, detect_eyes_with(face_finder))
        except NoFaceError as err:
            raise FrameBuildError(
                f"{opts.painting}: no face found in the painting; give --head-box X0,Y0,X1,Y1 "
                "(where the head frames go) or its eyes with --eyes X1,Y1,X2,Y2 (pixels)"
            ) from err
        box = head_box_from_faces(points, head_points, (hw, hh), (w, h))
        source = "matched faces"
    bx0, by0, bx1, by1 = (int(v) for v in (box.x0, box.y0, box.x1, box.y1))
    bw, bh = bx1 - bx0, by1 - by0
    alpha = sigmoid_alpha(bw, bh, opts.blend_j, opts.blend_k)
    region = painting[by0:by1, bx0:bx1].copy()
    # Hold the head still: each picked head frame is brought back onto the first one by the
    # similarity (turn, scale, shift) fitted to the face mesh's still points; where either
    # has no mesh, by phase correlation (eyes left out of the comparison), in whole pixels.
    moves: list[list[float]] = []
    unaligned: list[str] = []
    chosen: list[np.ndarray] = []
    ref_eyes = eyes_left_to_right(first)
    ref_mesh = meshes[0]
    for i in picks:
        mesh_i = meshes[i]
        if not opts.stabilise:
            moves.append([0.0, 0.0, 0.0, 1.0])
            chosen.append(heads[i])
        elif ref_mesh is not None and mesh_i is not None:
            sim = head_similarity(ref_mesh, mesh_i)
            if sim.small((hw, hh)):
                # What the mesh fit leaves over, measured on the whole face (sub-pixel).
                left = residual_shift(heads[0], undo_similarity(heads[i], sim), ref_eyes)
                sim = refined(sim, *left)
                moves.append([round(v, 3) for v in (sim.tx, sim.ty, sim.angle, sim.scale)])
                chosen.append(undo_similarity(heads[i], sim))
            else:
                unaligned.append(files[i].name)
                moves.append([0.0, 0.0, 0.0, 1.0])
                chosen.append(heads[i])
        else:
            move = head_shift(heads[0], heads[i], ref_eyes)
            if move is None:
                unaligned.append(files[i].name)
                move = (0, 0)
            moves.append([float(move[0]), float(move[1]), 0.0, 1.0])
            chosen.append(shifted(heads[i], -move[0], -move[1]))
    # Only what moves between the head frames (the eyes, lids, a turn left over) is blended
    # in: elsewhere the painting keeps its own sharpness and texture.
    alpha = alpha * motion_mask(chosen, (bw, bh))
    colour = ColourMatch.fit(chosen, region) if opts.colour_match else None
    rest = _rest_index(angles)

    def render(i: int) -> np.ndarray:
        return blend_frame(region, chosen[i], alpha, colour)

    build: dict[str, Any] = {
        "mode": "blend",
        "generator": f"monalisa {__version__}",
        "source": opts.painting.name,
        "source_sha256": _sha256(opts.painting),
        "heads": opts.heads.name,
        "head_frames": [files[i].name for i in picks],
        "measured_angles": angles,
        "angle_range": [lo, hi],
        "paste_box": [int(v) for v in (box.x0, box.y0, box.x1, box.y1)],
        "paste_box_from": source,
        "blend_j": opts.blend_j,
        "blend_k": opts.blend_k,
        "colour_match": opts.colour_match,
        "stabilise": opts.stabilise,
        # Each picked head frame's movement against the first head frame, undone before
        # blending: [dx, dy] pixels, turn (degrees), scale, fitted as a similarity taking the
        # first frame's still face points onto this one's; `unaligned`: moved too far to be a
        # wobble, left as they are.
        "head_moves": moves,
        "unaligned": unaligned,
    }
    # Zoom strip: the first head frame's eyes mapped into the painting.
    sx, sy = (box.x1 - box.x0) / hw, (box.y1 - box.y0) / hh
    ex = [box.x0 + p.x * sx for p in (first.right_eye, first.left_eye)]
    ey = [box.y0 + p.y * sy for p in (first.right_eye, first.left_eye)]
    ipd = max(4.0, abs(ex[1] - ex[0]))
    eye_box = Box(
        max(0.0, min(ex) - 0.6 * ipd),
        max(0.0, min(ey) - 0.35 * ipd),
        min(float(w), max(ex) + 0.6 * ipd),
        min(float(h), max(ey) + 0.35 * ipd),
    )
    grid = Grid(len(angles), (0.0,), (0.0,))
    frames = Frames(angles, grid, rest, eye_box, build, box)
    result = _build_set(opts, painting, (bx0, by0), render, frames, progress)
    limit = f"{100 * MAX_SHIFT_FRACTION:.0f} %"
    uneven = uneven_sweep(angles, opts.heads)
    return replace(
        result,
        warnings=tuple(
            f"{opts.heads / name}: moved more than {limit} of its size against {files[0].name}, "
            "too far to be a wobble: left where it is (look at the contact sheet)"
            for name in unaligned
        )
        + ((uneven,) if uneven else ()),
    )


def build(opts: BuildOptions) -> BuildResult:
    """Run the build ``opts.mode`` asks for."""
    if opts.mode == "synthesize":
        return build_synthesize(opts)
    if opts.mode == "blend":
        return build_blend(opts)
    raise FrameBuildError(f"--mode {opts.mode!r}: expected 'synthesize' or 'blend'")
