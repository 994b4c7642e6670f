"""Field of view: what part of the sensor a camera stream shows, and the angle it spans.

Also the pinhole focal length, the camera's tilt and the head band an installation's geometry
gives, gathered in one :class:`CameraView`. Pure arithmetic, no camera library. The runner
builds the view once from the configuration (what the camera is expected to crop, and the
``[finder]`` settings that place it); ``config check`` (the configuration's validator) and
``monalisa band`` build the same view; the app replaces it when the opened camera reports
another crop (each reopening may), and hands the new view to the finder and the gaze, which use
nothing else for the field of view, the tilt or the band.

The ISP keeps a stream's aspect ratio by cropping the sensor, not by squashing it (picamera2
issue #450): a 4:3 stream from Camera Module 3's 16:9 sensor loses a quarter of its columns,
and with them a fifth of the lens's 66°.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the settings' type only: the configuration imports this module
    from appliance.config import CameraConfig, FinderConfig


def narrowed_hfov_deg(hfov_deg: float, fraction: float) -> float:
    """The horizontal field of view of the part of the sensor's width an image shows.

    Args:
        hfov_deg: The lens's field of view over the sensor's whole width, degrees (0-180).
        fraction: Shown width over the sensor's full width, in (0, 1]; values outside it
            (or not finite) count as 1.

    Returns:
        ``2·atan(fraction · tan(hfov / 2))``, degrees.
    """
    half = math.radians(hfov_deg) / 2.0
    return math.degrees(2.0 * math.atan(_fraction(fraction) * math.tan(half)))


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


def focal_px(width: float, hfov_deg: float) -> float:
    """The pinhole focal length, pixels, of an image ``width`` pixels wide spanning ``hfov_deg``.

    ``width / 2 / tan(hfov / 2)``: a point ``x`` metres to the side at depth ``z`` lands
    ``focal_px · x / z`` pixels from the image's centre.
    """
    return width / 2.0 / math.tan(math.radians(hfov_deg) / 2.0)


def band_from_geometry(
    *,
    width: int,
    height: int,
    hfov_deg: float,
    camera_height_m: float,
    tilt_deg: float,
    eye_min_m: float,
    eye_max_m: float,
    near_m: float,
    far_m: float,
) -> tuple[float, float]:
    """The head band for an installation: where faces can appear, as fractions of the height.

    Pinhole geometry (square pixels): a face whose eyes are between ``eye_min_m`` and
    ``eye_max_m`` above the floor, between ``near_m`` and ``far_m`` from the camera, has its
    box (from 5 cm above the eyes to 11 cm below them) inside the returned rows. No defaults
    here: an installation's come from :class:`~appliance.config.FinderConfig` (see
    :func:`install_band`).

    Args:
        width: Camera image width, pixels.
        height: Camera image height, pixels.
        hfov_deg: Horizontal field of view, degrees.
        camera_height_m: Height of the camera's lens above the floor, metres.
        tilt_deg: Downward tilt of the camera, degrees (0 = level; negative = up).
        eye_min_m: Lowest eye height to see (children), metres.
        eye_max_m: Highest eye height to see, metres.
        near_m: Nearest visitor distance to cover, metres (> 0).
        far_m: Farthest visitor distance to cover, metres (>= near_m).

    Returns:
        ``(band_top, band_bottom)``, rounded outwards to 0.01 and clipped to [0, 1].

    Raises:
        ValueError: The ranges are empty or the camera sees none of them.
    """
    if not (0 < near_m <= far_m and eye_min_m <= eye_max_m and width > 0 and height > 0):
        raise ValueError("band: need 0 < near <= far, eye_min <= eye_max and a positive size")
    f = focal_px(width, hfov_deg)
    t = math.radians(tilt_deg)
    rows: list[float] = []
    for y_m in (eye_max_m + 0.05, eye_min_m - 0.11):
        for z in (near_m, far_m):
            dy = camera_height_m - y_m
            depth = z * math.cos(t) + dy * math.sin(t)
            if depth <= 0:
                raise ValueError("band: the camera is tilted so far that it does not see visitors")
            rows.append(height / 2.0 + f * (-z * math.sin(t) + dy * math.cos(t)) / depth)
    top = max(0.0, math.floor(min(rows) / height * 100) / 100)
    bottom = min(1.0, math.ceil(max(rows) / height * 100) / 100)
    if bottom <= 0.0 or top >= 1.0:
        raise ValueError("band: no visitor's face would be in the picture")
    return top, bottom


def install_band(
    config: FinderConfig, width: int, height: int, hfov_deg: float
) -> tuple[float, float]:
    """The head band that ``config``'s camera height, tilt and visitors give for an image.

    The band of ``CameraView(width, height, hfov_deg, place=config)``
    (:meth:`CameraView.head_band`).

    Args:
        config: The ``[finder]`` settings; ``camera_height_m`` must be set.
        width: Image width, pixels.
        height: Image height, pixels.
        hfov_deg: The horizontal field of view the images show, degrees (after any sensor
            crop).

    Returns:
        ``(band_top, band_bottom)`` as :func:`band_from_geometry` gives them.

    Raises:
        ValueError: ``camera_height_m`` is not set, or the camera sees none of the faces.
    """
    return CameraView(width, height, hfov_deg, place=config).head_band()


_AS_SOURCE = (-1, -1)
"""``sensor`` argument of :meth:`CameraView.expected`: the sensor :func:`default_sensor` gives."""


@dataclass(frozen=True)
class CameraView:
    """What the camera's images show: size, sensor crop, field of view, focal length, tilt, band.

    One value for the whole loop (see the module's docstring): the field of view, the tilt and
    the head band are worked out here only. A view is immutable; :meth:`seen` gives the view of
    another image size or crop (the same place, so the same tilt).

    Attributes:
        width: Image width, pixels (> 0).
        height: Image height, pixels (> 0).
        lens_hfov_deg: The lens's field of view over the sensor's whole width, degrees
            (``camera.hfov_deg``).
        width_fraction: Of the sensor's width the images show, (0, 1]; anything else (or not
            finite) counts as 1.
        sensor: The sensor's pixel array (width, height), or None when the image is the whole
            field (webcams, replays, a camera that reported its crop).
        place: The ``[finder]`` settings whose camera height, tilt and visitors give the head
            band (:meth:`head_band`), and whose tilt levels the gaze (:attr:`tilt_deg`);
            None: no band from geometry, a level camera.
    """

    width: int
    height: int
    lens_hfov_deg: float
    width_fraction: float = 1.0
    sensor: tuple[int, int] | None = None
    place: FinderConfig | None = None

    @classmethod
    def expected(
        cls,
        camera: CameraConfig,
        place: FinderConfig | None = None,
        sensor: tuple[int, int] | None = _AS_SOURCE,
    ) -> CameraView:
        """The view a configuration's camera is expected to give, before it is opened.

        Args:
            camera: The ``[camera]`` settings (size, ``hfov_deg``, ``source``).
            place: The ``[finder]`` settings for the head band, or None.
            sensor: The sensor's pixel array, None for "the image is the whole field";
                by default the one :func:`default_sensor` gives for ``camera.source``.

        Returns:
            The view, its crop from :func:`expected_width_fraction`.
        """
        if sensor == _AS_SOURCE:
            sensor = default_sensor(camera.source)
        size = (camera.width, camera.height)
        fraction = 1.0 if sensor is None else expected_width_fraction(size, sensor)
        return cls(camera.width, camera.height, camera.hfov_deg, fraction, sensor, place)

    def seen(
        self,
        width: int | None = None,
        height: int | None = None,
        width_fraction: float | None = None,
    ) -> CameraView:
        """This view for images of another size, or showing another part of the sensor.

        Args:
            width: Image width, pixels; None: unchanged.
            height: Image height, pixels; None: unchanged.
            width_fraction: Of the sensor's width the images show (what the opened camera
                reports); None: unchanged. Out-of-range values count as 1.

        Returns:
            The new view (``self`` when nothing changes).
        """
        w = self.width if width is None else width
        h = self.height if height is None else height
        f = self.width_fraction if width_fraction is None else _fraction(width_fraction)
        if (w, h, f) == (self.width, self.height, self.width_fraction):
            return self
        return replace(self, width=w, height=h, width_fraction=f)

    @property
    def hfov_deg(self) -> float:
        """The horizontal field of view the images span, degrees (after the sensor crop)."""
        return narrowed_hfov_deg(self.lens_hfov_deg, self.width_fraction)

    @property
    def focal_px(self) -> float:
        """The pinhole focal length of the images, pixels (:func:`focal_px`)."""
        return focal_px(self.width, self.hfov_deg)

    def distance_m(self, span_m: float, span_px: float) -> float:
        """How far away, metres, something ``span_m`` wide (level, facing) spans ``span_px``."""
        return self.focal_px * span_m / span_px

    @property
    def tilt_deg(self) -> float:
        """The camera's downward tilt, degrees (-45 to 80; 0 = level, negative = up).

        ``place.camera_tilt_deg``, with or without ``camera_height_m``: the head band is
        worked out with it, and the gaze levels the vertical angle to a visitor's eyes with it
        (:mod:`appliance.gaze.geometry`). 0 without a ``place``.
        """
        return 0.0 if self.place is None else self.place.camera_tilt_deg

    def head_band(self) -> tuple[float, float]:
        """The head band ``place``'s camera height and visitors and :attr:`tilt_deg` give.

        Returns:
            ``(band_top, band_bottom)``, fractions of the height, for these images' size and
            field of view (:func:`band_from_geometry`).

        Raises:
            ValueError: No ``place``, ``camera_height_m`` is not set, or the camera sees none
                of the faces.
        """
        place = self.place
        if place is None or place.camera_height_m is None:
            raise ValueError("band: camera_height_m is not set")
        return band_from_geometry(
            width=self.width,
            height=self.height,
            hfov_deg=self.hfov_deg,
            camera_height_m=place.camera_height_m,
            tilt_deg=self.tilt_deg,
            eye_min_m=place.visitor_eyes_m[0],
            eye_max_m=place.visitor_eyes_m[1],
            near_m=place.visitor_distance_m[0],
            far_m=place.visitor_distance_m[1],
        )


def _fraction(value: float) -> float:
    """``value`` if it is a fraction in (0, 1], else 1."""
    return value if math.isfinite(value) and 0.0 < value <= 1.0 else 1.0
