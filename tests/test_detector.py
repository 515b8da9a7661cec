"""FaceDetector, MTCNN and CenterFace, on real photos: the astronaut, and the masked/unmasked
fixtures; the CenterFace model's bad-file errors."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import astronaut_bgr, box_iou, contains, fixture_paths, read_bgr, run_module
from perception.detector import DETECTORS, FaceDetector, to_rgb
from common.errors import InputError


@pytest.fixture(scope="module")
def centerface():
    return FaceDetector(backend="centerface")


@pytest.fixture(params=DETECTORS)
def any_detector(request, detector, centerface):
    return {"mtcnn": detector, "centerface": centerface}[request.param]


def test_finds_the_astronauts_face_with_landmarks_inside(any_detector):
    image = astronaut_bgr()
    detector = any_detector
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > (0.95 if detector.backend == "mtcnn" else 0.8)
    height, width = image.shape[:2]
    # Her face sits in the upper middle of the portrait and is a fraction of its width.
    cx, cy = (face.box[0] + face.box[2]) / 2, (face.box[1] + face.box[3]) / 2
    assert width * 0.25 < cx < width * 0.75 and cy < height * 0.5
    assert width * 0.08 < face.width < width * 0.5
    assert 0.8 < face.height / face.width < 1.6
    assert len(face.landmarks) == 5
    assert all(contains(face.box, (x, y, x, y)) for x, y in face.landmarks)
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


def test_both_backends_put_the_astronauts_face_in_the_same_place(detector, centerface):
    image = astronaut_bgr()
    (mtcnn,), (center,) = detector.detect(image), centerface.detect(image)
    assert box_iou(mtcnn.box, center.box) > 0.7
    assert np.allclose(mtcnn.landmarks, center.landmarks, atol=0.06 * mtcnn.width)


def test_bgr_and_rgb_inputs_give_the_same_faces(any_detector):
    detector = any_detector
    bgr = astronaut_bgr()
    from_bgr = detector.detect(bgr, color="bgr")
    from_rgb = detector.detect(np.ascontiguousarray(bgr[:, :, ::-1]), color="rgb")
    assert [f.box for f in from_bgr] == [f.box for f in from_rgb]
    # Swapping the channels is a different image: the colour argument is really used.
    assert to_rgb(bgr, "bgr")[0, 0].tolist() == bgr[0, 0, ::-1].tolist()


@pytest.mark.parametrize("path", fixture_paths("with_mask") + fixture_paths("without_mask"),
                         ids=lambda p: p.split("fixtures/")[-1])
def test_finds_the_one_face_in_each_fixture_photo_masked_or_not(detector, path):
    faces = detector.detect(read_bgr(path))
    assert len(faces) == 1
    assert faces[0].width >= 40


@pytest.mark.parametrize("path", fixture_paths("with_mask") + fixture_paths("without_mask"),
                         ids=lambda p: p.split("fixtures/")[-1])
def test_centerface_finds_a_face_in_each_fixture_photo_masked_or_not(centerface, path):
    faces = centerface.detect(read_bgr(path))
    assert faces and faces[0].width >= 40
    assert all(contains(faces[0].box, (x, y, x, y)) for x, y in faces[0].landmarks)


def test_no_face_on_a_wall(any_detector):
    from skimage import data

    wall = np.stack([data.brick()] * 3, axis=-1)
    assert any_detector.detect(wall) == []


def test_upscale_finds_a_small_face_in_the_small_images_pixels():
    import cv2

    image = astronaut_bgr()
    (big,) = FaceDetector(backend="centerface").detect(image)
    small = cv2.resize(image, (128, 128), interpolation=cv2.INTER_AREA)  # a ~28 px face
    (face,) = FaceDetector(backend="centerface", upscale=2.0, min_face_size=None).detect(small)
    assert box_iou(face.box, tuple(v / 4.0 for v in big.box)) > 0.6
    assert all(contains(face.box, (x, y, x, y)) for x, y in face.landmarks)


def test_centerface_min_face_size_drops_smaller_faces(centerface):
    image = astronaut_bgr()
    (face,) = centerface.detect(image)
    assert FaceDetector(backend="centerface", min_face_size=int(face.height) + 1
                        ).detect(image) == []
    assert len(FaceDetector(backend="centerface", min_face_size=int(face.height) - 1
                            ).detect(image)) == 1


def test_channels_last_changes_speed_not_boxes():
    image = astronaut_bgr()
    plain = FaceDetector(channels_last=False).detect(image)
    fast = FaceDetector(channels_last=True).detect(image)
    assert len(plain) == len(fast) == 1
    assert np.allclose(plain[0].box, fast[0].box, atol=0.5)


@pytest.mark.parametrize("kwargs", [{"min_face_size": 4}, {"thresholds": (0.6, 0.7)},
                                    {"thresholds": (0.6, 0.7, 1.5)}, {"min_score": 2.0},
                                    {"min_face_size": None}, {"upscale": 2.0},
                                    {"upscale": 0.5, "backend": "centerface"},
                                    {"runtime": "tensorflow"}])
def test_constructor_rejects_bad_values(kwargs):
    with pytest.raises(ValueError) as info:
        FaceDetector(**kwargs)
    assert next(iter(kwargs)) in str(info.value)


def test_an_unknown_detector_name_lists_the_choices():
    with pytest.raises(ValueError) as info:
        FaceDetector(backend="yolo")
    assert "'yolo'" in str(info.value) and "mtcnn, centerface" in str(info.value)


def test_a_missing_centerface_model_names_the_file(tmp_path):
    missing = str(tmp_path / "centerface.onnx")
    with pytest.raises(InputError) as info:
        FaceDetector(backend="centerface", model_path=missing)
    assert missing in str(info.value) and "does not exist" in str(info.value)


@pytest.mark.parametrize("content", [b"", b"not a model" * 100, bytes(range(256)) * 40])
def test_a_corrupt_centerface_model_names_the_file(tmp_path, content):
    corrupt = tmp_path / "centerface.onnx"
    corrupt.write_bytes(content)
    with pytest.raises(InputError) as info:
        FaceDetector(backend="centerface", model_path=str(corrupt))
    assert str(corrupt) in str(info.value) and "cannot load" in str(info.value)


def test_another_onnx_model_is_not_taken_for_centerface(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "relu",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    path = str(tmp_path / "relu.onnx")
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(InputError) as info:
        FaceDetector(backend="centerface", model_path=path)
    assert path in str(info.value)


@pytest.mark.parametrize("image", [np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8),
                                   np.zeros((10, 10, 5), np.uint8), "photo.jpg"])
def test_bad_images_raise_input_error(detector, image):
    with pytest.raises(InputError):
        detector.detect(image)


def test_detect_cli_names_the_detector_choices_in_one_line(tmp_path):
    run = run_module("perception.detect", "tests/fixtures/without_mask/152.jpg",
                     "--detector", "yolo", "--out", str(tmp_path / "out.png"))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert "'yolo'" in run.stderr and "'mtcnn', 'centerface'" in run.stderr


def test_detect_cli_runs_centerface_upscaled(tmp_path):
    import json

    out = tmp_path / "out.png"
    run = run_module("perception.detect", "tests/fixtures/without_mask/187.jpg",
                     "--detector", "centerface", "--upscale", "2", "--out", str(out))
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "out.json").read_text())
    assert record["detector"] == "centerface" and record["upscale"] == 2.0
    assert [face["label"] for face in record["frames"][0]["faces"]] == ["unmasked"]
