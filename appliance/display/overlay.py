"""The debug overlay (``d``): its figures, its text, and the shapes of its camera inset.

No pygame here: the overlay is described as plain values — the text lines, the size of the camera
inset, and a list of :data:`Shape` (outlines, lines, dots in overlay pixels) — which
:class:`appliance.display.screen.Display` renders with pygame. The loop builds an
:class:`Overlay` for every camera frame and hands it to ``Display.set_overlay``.
"""

from __future__ import annotations

from dataclasses import dataclass

from appliance.display.layout import Rect4, rotate_rect
from appliance.types import Box, Face

RGB = tuple[int, int, int]
RGBA = tuple[int, int, int, int]

BACKGROUND: RGBA = (0, 0, 0, 170)
INSET: RGBA = (25, 25, 25, 220)
TEXT: RGB = (235, 235, 235)
FACE: RGB = (60, 220, 60)
VIEWER: RGB = (255, 70, 70)
EYE: RGB = (0, 230, 255)
REGION: RGB = (250, 200, 0)
BAND: RGB = (90, 150, 255)
TILE: RGB = (75, 75, 95)
FOLLOW: RGB = (235, 60, 235)
BORDER: RGB = (120, 120, 120)
LEGEND: tuple[tuple[str, RGB], ...] = (
    ("band", BAND),
    ("tiles", TILE),
    ("ran", REGION),
    ("follow", FOLLOW),
    ("face", FACE),
    ("viewer", VIEWER),
)
"""Legend entries of the camera inset: label and the colour it is drawn in (opaque RGB)."""

PAD = 6
"""Space around the inset and the text inside the overlay, pixels."""

MARGIN = 8
"""Distance of the overlay from the upright picture's top-left corner, pixels."""


@dataclass(frozen=True, slots=True)
class Overlay:
    """What the debug overlay shows; camera quantities are in camera-image pixels.

    Attributes:
        fps: Camera frames processed per second.
        image_size: ``(width, height)`` of the camera image the boxes refer to, pixels.
        faces: Faces found in that image (boxes and eye keypoints are drawn).
        viewer: The chosen viewer's face box, or None.
        state: Gaze state (``tracking``, ``holding``, ``idle``) or empty.
        regions: Where the finder ran the detector this frame (follow crop, sweep tiles, the
            whole-frame pass), camera pixels; drawn bright.
        band: The finder's head band, or None; drawn as its top and bottom lines.
        tiles: The band's whole tile grid, camera pixels; drawn faintly.
        follow: The follow crop searched this frame (one of ``regions``), or None; drawn in
            its own colour.
    """

    fps: float = 0.0
    image_size: tuple[int, int] = (640, 480)
    faces: tuple[Face, ...] = ()
    viewer: Box | None = None
    state: str = ""
    regions: tuple[Box, ...] = ()
    band: Box | None = None
    tiles: tuple[Box, ...] = ()
    follow: Box | None = None


@dataclass(frozen=True, slots=True)
class Outline:
    """A rectangle's outline ``(x, y, width, height)``, ``width`` pixels thick."""

    rect: tuple[int, int, int, int]
    colour: RGB
    width: int


@dataclass(frozen=True, slots=True)
class Line:
    """A one-pixel line between two points (both drawn)."""

    start: tuple[int, int]
    end: tuple[int, int]
    colour: RGB


@dataclass(frozen=True, slots=True)
class Dot:
    """A filled circle."""

    center: tuple[int, int]
    radius: int
    colour: RGB


Shape = Outline | Line | Dot
"""One drawing step of the camera inset, in overlay pixels."""


def upright_size(screen: tuple[int, int], rotation: int) -> tuple[int, int]:
    """``(width, height)`` of the screen as the viewer sees it (the monitor turned ``rotation``)."""
    sw, sh = screen
    return (sh, sw) if rotation in (90, 270) else (sw, sh)


def inset_size(upright: tuple[int, int], info: Overlay | None) -> tuple[int, int]:
    """``(width, height)`` of the camera inset, pixels.

    30 % of the upright screen's width, between 120 and 480 pixels (and 16 narrower than the
    screen); the height follows the camera image's aspect (640×480 before any camera data).
    """
    lw = upright[0]
    cam_w, cam_h = info.image_size if info is not None else (640, 480)
    iw = int(min(max(lw * 0.3, 120), 480, lw - 16))
    return iw, max(1, round(iw * cam_h / max(cam_w, 1)))


def frame_text(asked: int, count: int, drawn: int | None = None, rendering: bool = False) -> str:
    """``frame i/count-1``: the frame drawn, and the one asked for when it is another.

    Args:
        asked: The frame index the display was asked for, 0 … ``count - 1``.
        count: Frames in the set.
        drawn: The frame drawn for it (the nearest rendered one while the asked frame's patch
            is not rendered); None = ``asked``.
        rendering: Whether patches are still being rendered (the asked frame may come yet);
            otherwise a frame drawn for another was not rendered (its patch unreadable).
    """
    if drawn is None or drawn == asked:
        return f"frame {asked}/{count - 1}"
    why = "rendering" if rendering else "not rendered"
    return f"frame {drawn}/{count - 1} (asked {asked}, {why})"


def text_lines(info: Overlay | None, frame: str) -> list[str]:
    """The overlay's text under the inset.

    Args:
        info: The latest figures, or None before the first camera frame.
        frame: The frame on screen, as :func:`frame_text` says it.
    """
    if info is None:
        return [frame, "no camera data yet"]
    cam_w, cam_h = info.image_size
    sweeps = len(info.regions) - (info.follow is not None)
    tiles = f"   tiles {sweeps}/{len(info.tiles)}" if info.tiles else ""
    return [
        f"{info.fps:.1f} fps   {frame}   {info.state}".rstrip(),
        f"faces {len(info.faces)}   viewer {'yes' if info.viewer else 'none'}"
        f"   inferences {len(info.regions)}",
        f"camera {cam_w}x{cam_h}{tiles}   follow {'yes' if info.follow else 'no'}",
    ]


def camera_shapes(info: Overlay, inset: tuple[int, int, int, int]) -> list[Shape]:
    """The finder's plan and the faces, camera pixels scaled into ``inset``, back to front.

    The band's whole tile grid (faint), the regions the detector ran on this frame (bright),
    the head band's top and bottom lines, the follow crop (its own colour), the faces with
    their eyes, and the chosen viewer. The caller clips drawing to ``inset``.

    Args:
        info: What to draw; its ``image_size`` width maps onto the inset's width.
        inset: ``(x, y, width, height)`` of the inset in the overlay, pixels.
    """
    ix, iy, iw, _ = inset
    k = iw / max(info.image_size[0], 1)

    def box_rect(b: Box) -> tuple[int, int, int, int]:
        return (
            round(ix + b.x0 * k),
            round(iy + b.y0 * k),
            max(1, round(b.width * k)),
            max(1, round(b.height * k)),
        )

    shapes: list[Shape] = [Outline(box_rect(tile), TILE, 1) for tile in info.tiles]
    shapes += [Outline(box_rect(r), REGION, 1) for r in info.regions if r != info.follow]
    if info.band is not None:
        _, top, _, height = box_rect(info.band)
        for row in (top, top + height - 1):
            shapes.append(Line((ix, row), (ix + iw - 1, row), BAND))
    if info.follow is not None:
        shapes.append(Outline(box_rect(info.follow), FOLLOW, 2))
    for face in info.faces:
        shapes.append(Outline(box_rect(face.box), FACE, 2))
        for eye in (face.right_eye, face.left_eye):
            shapes.append(Dot((round(ix + eye.x * k), round(iy + eye.y * k)), 2, EYE))
    if info.viewer is not None:
        shapes.append(Outline(box_rect(info.viewer), VIEWER, 3))
    return shapes


def placement(size: tuple[int, int], upright: tuple[int, int], rotation: int) -> Rect4:
    """Where the overlay goes on the screen: :data:`MARGIN` from the upright top-left corner.

    Args:
        size: ``(width, height)`` of the upright overlay, pixels.
        upright: The screen as the viewer sees it (see :func:`upright_size`).
        rotation: Clockwise rotation of the monitor, degrees.

    Returns:
        ``(x0, y0, x1, y1)`` on the (unrotated) screen of the overlay turned by ``rotation``.
    """
    width, height = size
    return rotate_rect((MARGIN, MARGIN, MARGIN + width, MARGIN + height), upright, rotation)
