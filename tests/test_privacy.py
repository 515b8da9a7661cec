"""Bystanders' faces are blurred beyond detection; alerted faces stay as they were.

Real photos and the real face detector: a blur that a detector still sees through would not
protect anybody, so that is what the test asks of it.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_paths, head_patch, paste, wall
from perception.privacy import blur_boxes, blur_bystanders, bystander_boxes
from perception.types import Track


def two_people():
    """A wall with two real faces side by side; returns the frame and both boxes."""
    frame = wall()
    paths = fixture_paths("without_mask")
    left = paste(frame, head_patch(paths[0], 170), 60, 150)
    right = paste(frame, head_patch(paths[1], 170), 400, 150)
    return frame, left, right


def found_near(detector, frame, box) -> bool:
    cx, cy = (box[0] + box[2]) / 2.0, (box[1] + box[3]) / 2.0
    return any(f.box[0] <= cx <= f.box[2] and f.box[1] <= cy <= f.box[3]
               for f in detector.detect(frame))


def test_bystander_is_no_longer_a_face_and_the_alerted_one_is_untouched(detector):
    frame, left, right = two_people()
    assert found_near(detector, frame, left) and found_near(detector, frame, right), \
        "the detector must see both faces first, or the test proves nothing"
    tracks = [Track(track_id=1, box=left, label="unmasked", score=0.9),
              Track(track_id=2, box=right, label="masked", score=0.8)]
    before = frame.copy()
    out = blur_bystanders(frame, tracks, alerted_ids=[1])
    assert np.array_equal(frame, before)  # a pure function: the input is not touched
    assert not found_near(detector, out, right)
    assert found_near(detector, out, left)
    x1, y1, x2, y2 = left
    assert np.array_equal(out[y1:y2, x1:x2], frame[y1:y2, x1:x2])


def test_overlapping_bystander_does_not_smear_the_alerted_face():
    frame, left, _ = two_people()
    behind = (left[0] + 60, left[1] - 20, left[2] + 60, left[3] - 20)
    tracks = [Track(track_id=1, box=left, label="unmasked", score=0.9),
              Track(track_id=7, box=behind, label="masked", score=0.8)]
    out = blur_bystanders(frame, tracks, alerted_ids=(1,))
    x1, y1, x2, y2 = left
    assert np.array_equal(out[y1:y2, x1:x2], frame[y1:y2, x1:x2])
    assert not np.array_equal(out[behind[1]:left[1], left[2]:behind[2]],
                              frame[behind[1]:left[1], left[2]:behind[2]])


def test_boxes_at_and_beyond_the_edges():
    frame = wall()
    out = blur_boxes(frame, [(-50, -50, 40, 40), (600, 440, 700, 520), (900, 900, 950, 950)])
    assert out.shape == frame.shape and not np.array_equal(out[:40, :40], frame[:40, :40])
    assert np.array_equal(out[100:400, 100:500], frame[100:400, 100:500])
    assert bystander_boxes([Track(3, (1, 2, 3, 4), "masked", 0.5)], [3]) == ()


@pytest.mark.parametrize("frame,boxes,words", [
    (np.zeros((10, 10), np.uint8), [], "frame_bgr"),
    (np.zeros((10, 10, 3), np.float32), [], "frame_bgr"),
    (np.zeros((10, 10, 3), np.uint8), [(1, 2, 3)], "face box"),
    (np.zeros((10, 10, 3), np.uint8), [(1, 2, float("inf"), 4)], "finite"),
])
def test_bad_input_is_named(frame, boxes, words):
    with pytest.raises(ValueError, match=words):
        blur_boxes(frame, boxes)
