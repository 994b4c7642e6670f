"""Field of view: what part of the sensor a camera stream shows, and the angle it spans.

Pure arithmetic, no camera library: the configuration, ``monalisa band`` and the finder use
it before any camera is opened, the gaze geometry after the camera says what it really crops.

The ISP keeps a stream's aspect ratio by cropping the sensor, not by squashing it (picamera2
issue #450): a 4:3 stream from Camera Module 3's 16:9 sensor loses a quarter of its columns,
and with them a fifth of the lens's 66°.
"""

from __future__ import annotations

import math


def narrowed_hfov_deg(hfov_deg: float, fraction: float) -> float:
    """The horizontal field of view of the part of the sensor's width an image shows.

    Args:
        hfov_deg: The lens's field of view over the sensor's whole width, degrees (0-180).
        fraction: Shown width over the sensor's full width, in (0, 1]; values outside it
            (or not finite) count as 1.

    Returns:
        ``2·atan(fraction · tan(hfov / 2))``, degrees.
    """
    if not (math.isfinite(fraction) and 0.0 < fraction <= 1.0):
        fraction = 1.0
    half = math.radians(hfov_deg) / 2.0
    return math.degrees(2.0 * math.atan(fraction * math.tan(half)))


CAMERA_MODULE_3_SENSOR = (4608, 2592)
"""Camera Module 3's (IMX708's) pixel array, width × height: 16:9."""


def expected_width_fraction(size: tuple[int, int], sensor: tuple[int, int]) -> float:
    """How much of the sensor's width a stream will show, before any camera is opened.

    The ISP keeps the stream's aspect ratio by cropping the sensor: a stream narrower than the
    sensor (4:3 from a 16:9 sensor) loses columns, a wider one loses rows and keeps the whole
    width. This is what ``monalisa band`` needs at installation; the running appliance reads
    the crop libcamera really uses (:func:`sensor_width_fraction`).

    Args:
        size: The stream's (width, height), pixels.
        sensor: The sensor's pixel array (width, height), pixels, e.g.
            :data:`CAMERA_MODULE_3_SENSOR`.

    Returns:
        The fraction in (0, 1]: ``min(1, (w / h) / (sensor_w / sensor_h))``; 1.0 for sizes that
        make no sense.
    """
    w, h = size
    sw, sh = sensor
    if min(w, h, sw, sh) <= 0:
        return 1.0
    return min(1.0, (w * sh) / (h * sw))


def default_sensor(source: str) -> tuple[int, int] | None:
    """The sensor a camera source is taken to have before it runs, or None for "no crop".

    Args:
        source: ``camera.source`` ("picamera2", "webcam[:N]", "replay:DIR").

    Returns:
        :data:`CAMERA_MODULE_3_SENSOR` for picamera2; None for webcams and replays, whose
        images are their whole field of view.
    """
    return CAMERA_MODULE_3_SENSOR if source == "picamera2" else None


def expected_field_of_view(
    size: tuple[int, int], hfov_deg: float, sensor: tuple[int, int] | None
) -> tuple[float, float]:
    """The part of the sensor's width a stream will show, and its field of view.

    Args:
        size: The stream's (width, height), pixels.
        hfov_deg: The lens's field of view over the sensor's whole width, degrees.
        sensor: The sensor's pixel array (width, height), or None when the image is the
            whole field.

    Returns:
        ``(fraction, hfov_deg)``: the fraction in (0, 1] and the narrowed field of view.
    """
    fraction = 1.0 if sensor is None else expected_width_fraction(size, sensor)
    return fraction, narrowed_hfov_deg(hfov_deg, fraction)
