"""The bundled BlazeFace models: provenance hashes, tensor names and shapes, and their README."""

from __future__ import annotations

import hashlib

import pytest

from appliance import detector as det
from tests.support.run import REPO

MODELS = REPO / "models"

# name -> (file, sha256, input (name, shape), outputs [(name, shape)] as documented)
Shape = tuple[int, ...]
EXPECTED: dict[str, tuple[str, str, tuple[str, Shape], set[tuple[str, Shape]]]] = {
    "full": (
        "blazeface.tflite",
        "2c3728e6da56f21e21a320433396fb06d40d9088f2247c05e5635a688d45dfe1",
        ("input_1", (1, 192, 192, 3)),
        {("Identity", (1, 2304, 16)), ("Identity_1", (1, 2304, 1))},
    ),
    "short": (
        "blazeface_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8",
        ("input", (1, 128, 128, 3)),
        {("regressors", (1, 896, 16)), ("classificators", (1, 896, 1))},
    ),
    "mesh": (
        "face_mesh.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814",
        ("input_1", (1, 192, 192, 3)),
        {("conv2d_21", (1, 1, 1, 1404)), ("conv2d_31", (1, 1, 1, 1))},
    ),
    "iris": (
        "iris_landmark.tflite",
        "d1744d2a09c25f501d39eba4faff47e53ecca8852c5ce19bce8eeac39357521f",
        ("input_1", (1, 64, 64, 3)),
        {("output_eyes_contours_and_brows", (1, 213)), ("output_iris", (1, 15))},
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_file_hash(name: str) -> None:
    filename, sha, _, _ = EXPECTED[name]
    path = MODELS / filename
    assert path.is_file(), f"{path} missing"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha
    assert {**det.MODEL_FILES, **det.LANDMARK_MODEL_FILES}[name] == filename
    assert det.find_model(name) == path


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_model_tensors(name: str) -> None:
    filename, _, (in_name, in_shape), outputs = EXPECTED[name]
    interpreter = det._load_interpreter(MODELS / filename, 1)
    (inp,) = interpreter.get_input_details()
    assert (inp["name"], tuple(int(v) for v in inp["shape"])) == (in_name, in_shape)
    assert inp["dtype"].__name__ == "float32"
    got = {(d["name"], tuple(int(v) for v in d["shape"])) for d in interpreter.get_output_details()}
    assert got == outputs


def test_readme_documents_provenance_and_licence() -> None:
    text = (MODELS / "README.md").read_text(encoding="utf-8")
    for filename, sha, (in_name, _), outputs in EXPECTED.values():
        assert filename in text and sha in text and in_name in text
        for out_name, _ in outputs:
            assert f"`{out_name}`" in text
    assert "mediapipe==0.10.21" in text
    assert "Apache License" in text and "Version 2.0" in text
