"""The debug overlay's figures, text and inset shapes (no pygame; drawn in test_display_screen)."""

from __future__ import annotations

import re
import subprocess
import sys

from appliance.display import overlay as ov
from appliance.display.overlay import Dot, Line, Outline, Overlay
from appliance.types import Box, Face, Point
from tests.support.run import REPO


def _face(x: float, y: float, s: float) -> Face:
    eyes = (Point(x + s * 0.3, y + s * 0.4), Point(x + s * 0.7, y + s * 0.4))
    rest = tuple(Point(x + s / 2, y + s / 2) for _ in range(4))
    return Face(Box(x, y, x + s, y + s), 0.9, (*eyes, *rest))  # type: ignore[arg-type]


def test_the_package_layout_overlay_and_loop_load_without_pygame():
    code = (
        "import sys, appliance.display, appliance.display.layout, appliance.display.overlay, "
        "appliance.app; print('pygame' in sys.modules)"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False"


def test_pygame_is_imported_by_the_screen_module_only():
    root = REPO / "appliance"
    importers = sorted(
        str(p.relative_to(root))
        for p in root.rglob("*.py")
        if re.search(r"^\s*(import pygame|from pygame)", p.read_text(), re.MULTILINE)
    )
    assert importers == ["camera.py", "display/screen.py"]  # camera: the webcam source only


def test_text_before_and_with_camera_data():
    assert ov.text_lines(None, ov.frame_text(2, 5)) == ["frame 2/4", "no camera data yet"]
    info = Overlay(
        fps=14.96,
        image_size=(1280, 720),
        faces=(_face(10, 10, 40),),
        viewer=Box(10, 10, 50, 50),
        state="tracking",
        regions=(Box(0, 0, 10, 10), Box(0, 0, 20, 20), Box(5, 5, 9, 9)),
        tiles=(Box(0, 0, 20, 20), Box(20, 0, 40, 20)),
        follow=Box(0, 0, 10, 10),
    )
    assert ov.text_lines(info, ov.frame_text(3, 33)) == [
        "15.0 fps   frame 3/32   tracking",
        "faces 1   viewer yes   inferences 3",
        "camera 1280x720   tiles 2/2   follow yes",
    ]
    idle = Overlay()
    assert ov.text_lines(idle, ov.frame_text(7, 33, 7))[0] == "0.0 fps   frame 7/32"
    assert ov.text_lines(idle, ov.frame_text(7, 33))[2] == "camera 640x480   follow no"


def test_the_frame_drawn_and_the_one_asked_when_they_differ():
    """While patches are rendered after READY the nearest ready frame is drawn for the one
    asked: the overlay names the drawn one, the asked one beside it only when it is another."""
    assert ov.frame_text(318, 660, 318, rendering=True) == "frame 318/659"
    assert ov.frame_text(318, 660, 312, rendering=True) == "frame 312/659 (asked 318, rendering)"
    assert ov.frame_text(318, 660, 312) == "frame 312/659 (asked 318, not rendered)"
    lines = ov.text_lines(Overlay(fps=9.0, state="tracking"), ov.frame_text(318, 660, 312, True))
    assert lines[0] == "9.0 fps   frame 312/659 (asked 318, rendering)   tracking"
    before = ov.text_lines(None, ov.frame_text(5, 660, 16, True))
    assert before == ["frame 16/659 (asked 5, rendering)", "no camera data yet"]


def test_inset_follows_the_screen_width_and_the_camera_aspect():
    assert ov.inset_size((1000, 800), Overlay(image_size=(1280, 720))) == (300, 169)
    assert ov.inset_size((300, 800), None) == (120, 90)  # never narrower than 120 ...
    assert ov.inset_size((3840, 2160), None) == (480, 360)  # ... nor wider than 480
    assert ov.upright_size((800, 600), 90) == (600, 800) == ov.upright_size((600, 800), 0)


def test_shapes_back_to_front_scaled_into_the_inset():
    viewer = _face(200, 100, 80)
    follow = Box(180, 80, 300, 200)
    info = Overlay(
        image_size=(640, 480),
        faces=(viewer,),
        viewer=viewer.box,
        regions=(follow, Box(0, 120, 320, 440)),
        band=Box(0, 120, 640, 440),
        tiles=(Box(0, 120, 320, 440), Box(320, 120, 640, 440)),
        follow=follow,
    )
    shapes = ov.camera_shapes(info, (6, 6, 320, 240))  # half scale
    kinds = [(type(s).__name__, s.colour) for s in shapes]
    assert kinds == [
        ("Outline", ov.TILE),
        ("Outline", ov.TILE),
        ("Outline", ov.REGION),  # the sweep tile that ran; the follow crop has its own colour
        ("Line", ov.BAND),
        ("Line", ov.BAND),
        ("Outline", ov.FOLLOW),
        ("Outline", ov.FACE),
        ("Dot", ov.EYE),
        ("Dot", ov.EYE),
        ("Outline", ov.VIEWER),
    ]
    assert shapes[0] == Outline((6, 66, 160, 160), ov.TILE, 1)
    assert shapes[3] == Line((6, 66), (325, 66), ov.BAND)  # the band's top row, inset-wide
    assert shapes[4] == Line((6, 225), (325, 225), ov.BAND)  # its bottom row
    assert shapes[5] == Outline((96, 46, 60, 60), ov.FOLLOW, 2)
    assert shapes[7] == Dot((118, 72), 2, ov.EYE)
    assert shapes[-1] == Outline((106, 56, 40, 40), ov.VIEWER, 3)
    assert ov.camera_shapes(Overlay(), (0, 0, 100, 75)) == []


def test_overlay_sits_at_the_upright_top_left_corner():
    assert ov.placement((200, 100), (800, 600), 0) == (8, 8, 208, 108)
    # A quarter turn clockwise: the picture's top-left is the screen's top-right.
    assert ov.placement((200, 100), (600, 800), 90) == (800 - 108, 8, 800 - 8, 208)
