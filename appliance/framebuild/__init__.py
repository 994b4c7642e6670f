"""Offline frame-set building: ``monalisa frames build`` (synthesize or blend) and its parts.

Modules, one concern each:

* :mod:`~appliance.framebuild.eyes` — find the eyes, refine each iris, fit the eye opening.
* :mod:`~appliance.framebuild.synthesize` — render frames by moving the irises (CPU only).
* :mod:`~appliance.framebuild.blend` — blend animated head frames into the painting.
* :mod:`~appliance.framebuild.contact` — the contact sheet for the artist.
* :mod:`~appliance.framebuild.output` — deterministic PNGs, ``frames.toml``, the output folder.
* :mod:`~appliance.framebuild.build` — the two pipelines end to end, with a progress bar.
"""

from __future__ import annotations


class FrameBuildError(ValueError):
    """Bad input to a build; the message is one line naming the file, option or value."""


class NoFaceError(FrameBuildError):
    """The face detector found no face in an image (callers reword it for their input)."""
