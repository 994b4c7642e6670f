"""Field of view of a stream: the ISP's sensor crop and the angle it leaves."""

from __future__ import annotations

import math

import pytest

from appliance.config import CameraConfig, FinderConfig
from appliance.optics import (
    CAMERA_MODULE_3_SENSOR,
    CameraView,
    band_from_geometry,
    default_sensor,
    expected_width_fraction,
    focal_px,
    install_band,
    narrowed_hfov_deg,
)


def test_a_4_3_stream_from_camera_module_3_keeps_three_quarters_of_the_width() -> None:
    assert expected_width_fraction((1280, 960), CAMERA_MODULE_3_SENSOR) == pytest.approx(0.75)
    assert expected_width_fraction((640, 480), CAMERA_MODULE_3_SENSOR) == pytest.approx(0.75)
    assert expected_width_fraction((1280, 720), CAMERA_MODULE_3_SENSOR) == 1.0
    assert expected_width_fraction((800, 800), CAMERA_MODULE_3_SENSOR) == pytest.approx(0.5625)
    # Wider than the sensor: rows are cropped, the whole width stays.
    assert expected_width_fraction((1280, 480), CAMERA_MODULE_3_SENSOR) == 1.0
    # The HQ camera's 4:3 sensor crops rows of a 16:9 stream, never columns.
    assert expected_width_fraction((1280, 720), (4056, 3040)) == 1.0


def test_nonsense_sizes_count_as_the_whole_width() -> None:
    assert expected_width_fraction((0, 960), CAMERA_MODULE_3_SENSOR) == 1.0
    assert expected_width_fraction((1280, 960), (4608, 0)) == 1.0
    assert expected_width_fraction((-5, 960), CAMERA_MODULE_3_SENSOR) == 1.0


def test_narrowed_field_of_view_is_the_pinhole_angle_of_the_crop() -> None:
    assert narrowed_hfov_deg(66.0, 1.0) == pytest.approx(66.0)
    want = 2 * math.degrees(math.atan(0.75 * math.tan(math.radians(33.0))))
    assert narrowed_hfov_deg(66.0, 0.75) == pytest.approx(want) == pytest.approx(51.93, abs=0.01)
    # The crop keeps the focal length: f = w / 2 / tan(hfov / 2) scales with the shown width.
    f_full = 4608 / 2 / math.tan(math.radians(66.0) / 2)
    f_crop = 3456 / 2 / math.tan(math.radians(narrowed_hfov_deg(66.0, 0.75)) / 2)
    assert f_crop == pytest.approx(f_full)
    for bad in (0.0, -0.5, 1.5, math.nan, math.inf):
        assert narrowed_hfov_deg(66.0, bad) == pytest.approx(66.0)


def test_only_picamera2_is_taken_to_crop_before_it_runs() -> None:
    assert default_sensor("picamera2") == CAMERA_MODULE_3_SENSOR == (4608, 2592)
    for source in ("webcam", "webcam:1", "replay:/clips/a"):
        assert default_sensor(source) is None
    whole = CameraView.expected(CameraConfig(width=1280, height=960), sensor=None)
    assert (whole.width_fraction, whole.hfov_deg) == (1.0, 66.0)
    crop = CameraView.expected(CameraConfig(width=1280, height=960), sensor=CAMERA_MODULE_3_SENSOR)
    assert crop.width_fraction == pytest.approx(0.75)
    assert crop.hfov_deg == pytest.approx(51.93, abs=0.01)


def test_the_camera_view_is_what_config_band_and_the_running_camera_share() -> None:
    place = FinderConfig(mode="band", camera_height_m=1.75)
    cam = CameraConfig(source="picamera2", width=1280, height=960)
    view = CameraView.expected(cam, place)  # what config check and `monalisa band` see
    assert view.sensor == CAMERA_MODULE_3_SENSOR and view.width_fraction == pytest.approx(0.75)
    assert view.focal_px == pytest.approx(focal_px(1280, view.hfov_deg))
    assert view.head_band() == install_band(place, 1280, 960, view.hfov_deg)
    # The opened camera reports the whole width (a reopened camera may): a new view, 66°.
    opened = view.seen(width_fraction=1.0)
    assert opened is not view and opened.hfov_deg == pytest.approx(66.0)
    assert opened.head_band() != view.head_band()
    assert view.seen(width_fraction=view.width_fraction) is view  # nothing changed
    assert view.seen(width_fraction=math.nan).width_fraction == 1.0  # nonsense: the whole width
    # 63 mm eyes 20 px apart at 1280 px and 51.9°: 1305 px focal, about 4.1 m away.
    assert view.distance_m(0.063, 20.0) == pytest.approx(view.focal_px * 0.063 / 20.0)
    with pytest.raises(ValueError, match="camera_height_m is not set"):
        CameraView.expected(cam).head_band()
    with pytest.raises(ValueError, match="camera_height_m is not set"):
        CameraView.expected(cam, FinderConfig()).head_band()


def test_the_views_tilt_is_its_places_and_places_its_band() -> None:
    place = FinderConfig(camera_height_m=2.2, camera_tilt_deg=8.0)
    tilted = CameraView(1280, 720, 66.0, place=place)
    level = CameraView(1280, 720, 66.0, place=FinderConfig(camera_height_m=2.2))
    assert (tilted.tilt_deg, level.tilt_deg, CameraView(1280, 720, 66.0).tilt_deg) == (8, 0, 0)
    assert tilted.seen(640, 480, width_fraction=0.75).tilt_deg == 8.0  # a new crop, same tilt
    # Tilted 8° down, the band reaches higher up the image (a smaller top) than level.
    want = band_from_geometry(
        width=1280,
        height=720,
        hfov_deg=66.0,
        camera_height_m=2.2,
        tilt_deg=8.0,
        eye_min_m=place.visitor_eyes_m[0],
        eye_max_m=place.visitor_eyes_m[1],
        near_m=place.visitor_distance_m[0],
        far_m=place.visitor_distance_m[1],
    )
    assert tilted.head_band() == want == install_band(place, 1280, 720, 66.0)
    assert tilted.head_band()[0] < level.head_band()[0]
