"""The portrait on a screen: layout geometry, the debug overlay, and the pygame-ce screen.

* :mod:`~appliance.display.layout` — driver choice, rotations, where the portrait lands and its
  resampled pixels (numpy and PIL).
* :mod:`~appliance.display.overlay` — the debug overlay's figures (:class:`Overlay`, built by the
  loop each camera frame), its text and the shapes of its camera inset (no pygame).
* :mod:`~appliance.display.screen` — :class:`Display`, the only module here that imports pygame.

:class:`Display` is imported from the screen module on first use, so importing this package (the
loop does, for :class:`Overlay`) does not load pygame.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from appliance.display.layout import (
    DRIVERS,
    DisplayError,
    Layout,
    Rect4,
    ScreenNotThere,
    choose_driver,
    compute_layout,
    rotate_array,
    rotate_rect,
)
from appliance.display.overlay import Overlay

if TYPE_CHECKING:
    from appliance.display.screen import Display

__all__ = [
    "DRIVERS",
    "Display",
    "DisplayError",
    "Layout",
    "Overlay",
    "Rect4",
    "ScreenNotThere",
    "choose_driver",
    "compute_layout",
    "rotate_array",
    "rotate_rect",
]


def __getattr__(name: str) -> object:
    if name == "Display":
        from appliance.display.screen import Display

        return Display
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
