"""Mask synthesis on a real face: the mask lands where each placement says, nowhere else."""
from __future__ import annotations

import numpy as np
import pytest

from perception.synth import PLACEMENTS, STYLES, synthesize


@pytest.fixture(scope="module")
def astronaut_face():
    """skimage's astronaut photo (public domain) and MTCNN's five landmarks of her face."""
    import skimage.data

    from perception.detector import FaceDetector

    image = skimage.data.astronaut()
    faces = FaceDetector().detect(image, color="rgb")
    assert len(faces) == 1 and len(faces[0].landmarks) == 5
    return image, np.asarray(faces[0].landmarks, np.float32)


def _at(alpha, point):
    x, y = int(round(point[0])), int(round(point[1]))
    return float(alpha[y, x])


@pytest.mark.parametrize("style", STYLES)
def test_a_worn_mask_covers_the_mouth_and_nose_but_not_the_eyes(astronaut_face, style):
    image, marks = astronaut_face
    out, alpha = synthesize(image, marks, "correct", style, np.random.RandomState(0))
    left_eye, right_eye, nose, mouth_left, mouth_right = marks
    assert _at(alpha, mouth_left) > 0.9 and _at(alpha, mouth_right) > 0.9
    assert _at(alpha, nose) > 0.9
    assert _at(alpha, left_eye) < 0.05 and _at(alpha, right_eye) < 0.05
    # the pixels changed under the mask and stayed put around the eyes
    mouth = (mouth_left + mouth_right) / 2
    y, x = int(mouth[1]), int(mouth[0])
    assert np.abs(out[y - 3:y + 4, x - 3:x + 4].astype(int)
                  - image[y - 3:y + 4, x - 3:x + 4]).mean() > 10
    ey, ex = int(left_eye[1]), int(left_eye[0])
    assert np.array_equal(out[ey - 2:ey + 3, ex - 2:ex + 3], image[ey - 2:ey + 3, ex - 2:ex + 3])


@pytest.mark.parametrize("style", STYLES)
@pytest.mark.parametrize("placement", ["below_nose", "chin"])
def test_an_incorrect_mask_leaves_the_nose_uncovered(astronaut_face, style, placement):
    image, marks = astronaut_face
    _, alpha = synthesize(image, marks, placement, style, np.random.RandomState(1))
    _, _, nose, mouth_left, mouth_right = marks
    assert _at(alpha, nose) < 0.05
    assert alpha.sum() > 500  # a mask was drawn, below the nose
    # the whole nose, not only its tip landmark, stays visible (ear loops may pass beside it)
    radius = int(0.2 * np.linalg.norm(marks[1] - marks[0]))
    x, y = int(round(nose[0])), int(round(nose[1]))
    assert alpha[y - 2 * radius:y + 1, x - radius:x + radius].max() < 0.05
    if placement == "below_nose":
        assert _at(alpha, mouth_left) > 0.9 and _at(alpha, mouth_right) > 0.9
    else:
        assert _at(alpha, mouth_left) < 0.05 and _at(alpha, mouth_right) < 0.05


def test_the_same_random_state_draws_the_same_mask(astronaut_face):
    image, marks = astronaut_face
    first, _ = synthesize(image, marks, "correct", None, np.random.RandomState(7))
    again, _ = synthesize(image, marks, "correct", None, np.random.RandomState(7))
    other, _ = synthesize(image, marks, "correct", None, np.random.RandomState(8))
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_the_mask_follows_a_rotated_face(astronaut_face):
    import cv2

    image, marks = astronaut_face
    centre = tuple(float(v) for v in marks.mean(axis=0))
    matrix = cv2.getRotationMatrix2D(centre, 25, 1.0)
    rotated = cv2.warpAffine(image, matrix, (image.shape[1], image.shape[0]))
    moved = (np.hstack([marks, np.ones((5, 1), np.float32)]) @ matrix.T).astype(np.float32)
    _, alpha = synthesize(rotated, moved, "correct", "surgical", np.random.RandomState(2))
    assert _at(alpha, moved[3]) > 0.9 and _at(alpha, moved[4]) > 0.9
    assert _at(alpha, moved[0]) < 0.05 and _at(alpha, moved[1]) < 0.05


@pytest.mark.parametrize("kwargs, word", [
    ({"placement": "forehead"}, "placement"),
    ({"style": "plastic"}, "style"),
    ({"landmarks": [(0, 0)] * 5}, "eye distance"),
    ({"landmarks": [(1, 2)] * 4}, "five"),
])
def test_bad_arguments_name_the_problem(astronaut_face, kwargs, word):
    image, marks = astronaut_face
    args = {"image_rgb": image, "landmarks": marks}
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        synthesize(**args)


def test_every_placement_is_known():
    assert PLACEMENTS == ("correct", "below_nose", "chin")


def test_a_printed_motif_lands_over_the_mouth_of_the_mask():
    # Novelty masks print a mouth or a face on the fabric; the motif must sit on the mask
    # where a mouth would be, not spill over the nose bridge or off the mask.
    from perception import synth

    size = int(synth._SPAN * synth._SCALE)
    top, bottom = 60.0, 120.0
    for seed in range(24):
        texture = np.full((size, size, 3), 128.0, np.float32)
        rng = np.random.RandomState(seed)
        synth._print_motif(texture, top, bottom, rng)
        changed = np.argwhere(np.abs(texture - 128.0).max(axis=2) > 1.0)
        assert len(changed) > 0, seed
        ys = changed[:, 0] / synth._SCALE + synth._ORIGIN[1]
        xs = changed[:, 1] / synth._SCALE + synth._ORIGIN[0]
        assert ys.min() > top + 0.1 * (bottom - top) and ys.max() < bottom, seed
        assert abs(xs.mean() - synth._CENTER_X) < 6.0 and np.ptp(xs) < 40.0, seed
    assert 0.0 < synth.MOTIF_RATE < 1.0
