"""FaceDetector (MTCNN) on real photos: the astronaut, and the masked/unmasked fixtures."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import astronaut_bgr, contains, fixture_paths, read_bgr
from perception.detector import FaceDetector, to_rgb
from perception.errors import InputError


def test_finds_the_astronauts_face_with_landmarks_inside(detector):
    image = astronaut_bgr()
    faces = detector.detect(image)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.95
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


def test_bgr_and_rgb_inputs_give_the_same_faces(detector):
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


def test_no_face_on_a_wall(detector):
    from skimage import data

    wall = np.stack([data.brick()] * 3, axis=-1)
    assert detector.detect(wall) == []


def test_channels_last_changes_speed_not_boxes():
    image = astronaut_bgr()
    plain = FaceDetector(channels_last=False).detect(image)
    fast = FaceDetector(channels_last=True).detect(image)
    assert len(plain) == len(fast) == 1
    assert np.allclose(plain[0].box, fast[0].box, atol=0.5)


@pytest.mark.parametrize("kwargs", [{"min_face_size": 4}, {"thresholds": (0.6, 0.7)},
                                    {"thresholds": (0.6, 0.7, 1.5)}, {"min_score": 2.0}])
def test_constructor_rejects_bad_values(kwargs):
    with pytest.raises(ValueError) as info:
        FaceDetector(**kwargs)
    assert next(iter(kwargs)) in str(info.value)


@pytest.mark.parametrize("image", [np.zeros((10, 10, 3), np.float32), np.zeros((0, 5, 3), np.uint8),
                                   np.zeros((10, 10, 5), np.uint8), "photo.jpg"])
def test_bad_images_raise_input_error(detector, image):
    with pytest.raises(InputError):
        detector.detect(image)
