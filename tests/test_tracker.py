"""FaceTracker: KCF on real faces, ids, re-association, loss, and the smoothed label."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import FIXTURES, box_iou, moving_frames
from perception.tracker import (KCF_MIN_REGION_PX, KCF_PAD, UNKNOWN, FaceTracker, iou, kcf_pad,
                                match_boxes, visible_fraction)
from perception.types import LABELS, Classification, Face

FACE = os.path.join(FIXTURES, "without_mask", "152.jpg")
OTHER = os.path.join(FIXTURES, "with_mask", "with_mask075.jpg")


def verdict(label: str, confidence: float = 0.9) -> Classification:
    rest = (1.0 - confidence) / (len(LABELS) - 1)
    probabilities = tuple(confidence if name == label else rest for name in LABELS)
    return Classification(label=label, score=confidence, probabilities=probabilities)


def test_opencv_has_kcf():
    # grad-cam's opencv-python-headless dependency can overwrite the contrib wheel.
    import cv2

    assert hasattr(cv2, "TrackerKCF_create")


@pytest.mark.parametrize("kwargs", [
    {"iou_threshold": 0.0}, {"iou_threshold": 1.5}, {"max_lost_frames": -1},
    {"max_lost_frames": 2.5}, {"max_missed_detections": -1}, {"smoothing": 0.0},
    {"smoothing": 1.2}, {"switch_after": 0}, {"min_visible": 0.0},
])
def test_constructor_rejects_bad_values(kwargs):
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError) as info:
        FaceTracker(**kwargs)
    assert name in str(info.value) and repr(value) in str(info.value)


def test_iou_and_visible_fraction():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == pytest.approx(1.0)
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert visible_fraction((-5, 0, 5, 10), 100, 100) == pytest.approx(0.5)
    assert visible_fraction((10, 10, 20, 20), 100, 100) == pytest.approx(1.0)


def test_match_boxes_maximises_total_overlap_not_first_best():
    # Greedy would give track 0 the detection it overlaps most (detection 0) and leave
    # track 1 without a match; the assignment must pair both.
    tracks = [(0, 0, 10, 10), (4, 0, 14, 10)]
    detections = [(2, 0, 12, 10), (-4, 0, 6, 10)]
    pairs = sorted(match_boxes(tracks, detections, 0.2))
    assert pairs == [(0, 1), (1, 0)]
    assert match_boxes(tracks, [(50, 50, 60, 60)], 0.2) == []


def test_kcf_keeps_one_id_on_a_moving_face(detector):
    frames, truth = moving_frames([FACE], [(60, 100)], (4, 1), 30)
    tracker = FaceTracker()
    faces = detector.detect(frames[0])
    assert len(faces) == 1
    assert tracker.observe(frames[0], faces) == [1]
    offset = np.subtract(faces[0].box, truth[0][0])  # face box inside the pasted head
    for frame, boxes in zip(frames[1:], truth[1:]):
        assert tracker.update(frame) == []
        (track,) = tracker.tracks
        assert track.track_id == 1 and track.lost_frames == 0
        expected = tuple(np.add(boxes[0], offset))
        assert box_iou(track.box, expected) > 0.6, (track.box, expected)
    assert track.frames_since_detection == len(frames) - 1
    # Landmarks travel with the box.
    assert all(track.box[0] <= x <= track.box[2] and track.box[1] <= y <= track.box[3]
               for x, y in track.landmarks)


def test_detections_reassociate_to_tracks_and_new_faces_get_new_ids(detector):
    frames, _ = moving_frames([FACE, OTHER], [(40, 60), (380, 220)], (3, 2), 11)
    tracker = FaceTracker()
    first = detector.detect(frames[0])
    assert len(first) == 2
    assert sorted(tracker.observe(frames[0], first[:1])) == [1]  # only one seen at first
    for frame in frames[1:10]:
        tracker.update(frame)
    faces = detector.detect(frames[10])
    assert len(faces) == 2
    fresh = tracker.observe(frames[10], faces)
    assert sorted(fresh) == [1, 2]
    by_id = {t.track_id: t for t in tracker.tracks}
    assert by_id[1].hits == 2 and by_id[1].frames_since_detection == 0
    assert by_id[2].hits == 1
    # The re-detected track took the detector's box for the face it was following.
    boxes = [f.box for f in faces]
    assert by_id[1].box in boxes and by_id[2].box in boxes
    moved = tuple(np.add(first[0].box, (30, 20, 30, 20)))  # 10 frames of (3, 2) px
    assert iou(by_id[1].box, moved) > 0.5


def test_a_face_leaving_the_image_is_lost_then_dropped(detector):
    frames, _ = moving_frames([FACE], [(420, 150)], (25, 0), 14)
    tracker = FaceTracker(max_lost_frames=3)
    tracker.observe(frames[0], detector.detect(frames[0]))
    lost_at = None
    for i, frame in enumerate(frames[1:], start=1):
        lost = tracker.update(frame)
        if lost and lost_at is None:
            lost_at = i
            assert tracker.tracks[0].lost_frames == 1
    assert lost_at is not None, "the face slid out of the picture but was never lost"
    assert len(tracker) == 0, "a lost track must be dropped after max_lost_frames"


def test_tracks_unconfirmed_by_detections_are_dropped(detector):
    frames, _ = moving_frames([FACE], [(100, 100)], (0, 0), 1)
    tracker = FaceTracker(max_missed_detections=2)
    tracker.observe(frames[0], detector.detect(frames[0]))
    for _ in range(2):
        tracker.observe(frames[0], [])
        assert len(tracker) == 1
    tracker.observe(frames[0], [])
    assert len(tracker) == 0


def test_one_wrong_frame_does_not_flip_the_label():
    tracker = FaceTracker()
    frame = np.zeros((200, 200, 3), np.uint8)
    tracker.observe(frame, [Face(box=(50, 50, 120, 130), score=0.99)])
    assert tracker.tracks[0].label == UNKNOWN and not tracker.tracks[0].needs_alert
    sequence = ["masked", "masked", "masked", "unmasked", "masked", "masked"]
    labels = []
    for label in sequence:
        confidence = 0.99 if label == "unmasked" else 0.9
        tracker.add_classifications({1: verdict(label, confidence)})
        labels.append(tracker.tracks[0].label)
    assert labels == ["masked"] * len(sequence)


def test_a_lasting_change_does_flip_the_label():
    tracker = FaceTracker(switch_after=2)
    frame = np.zeros((200, 200, 3), np.uint8)
    tracker.observe(frame, [Face(box=(50, 50, 120, 130), score=0.99)])
    for _ in range(3):
        tracker.add_classifications({1: verdict("masked")})
    labels = []
    for _ in range(4):  # the person took the mask off
        tracker.add_classifications({1: verdict("unmasked")})
        labels.append(tracker.tracks[0].label)
    assert labels[0] == "masked" and labels[-1] == "unmasked"
    assert tracker.tracks[0].needs_alert
    assert 0.5 < tracker.tracks[0].score <= 1.0


def test_without_smoothing_one_frame_flips_it():
    # The control for the two tests above: the smoothing is what protects the label.
    tracker = FaceTracker(smoothing=1.0, switch_after=1)
    frame = np.zeros((200, 200, 3), np.uint8)
    tracker.observe(frame, [Face(box=(50, 50, 120, 130), score=0.99)])
    tracker.add_classifications({1: verdict("masked")})
    tracker.add_classifications({1: verdict("unmasked")})
    assert tracker.tracks[0].label == "unmasked"


def test_tracks_are_copies_and_reset_keeps_ids_unique():
    tracker = FaceTracker()
    frame = np.zeros((200, 200, 3), np.uint8)
    tracker.observe(frame, [Face(box=(50, 50, 120, 130), score=0.99)])
    tracker.tracks[0].label = "tampered"
    assert tracker.tracks[0].label == UNKNOWN
    tracker.reset()
    assert len(tracker) == 0
    assert tracker.observe(frame, [Face(box=(50, 50, 120, 130), score=0.99)]) == [2]


def test_a_small_face_that_jumped_past_its_box_keeps_its_id():
    # Seen from a turning robot a 30 px face moves more than its width between processed
    # frames: no overlap with its old box, but still the nearest face of that size.
    tracker = FaceTracker()
    frame = np.zeros((240, 320, 3), np.uint8)
    tracker.observe(frame, [Face(box=(100, 100, 130, 130), score=0.99)])
    jumped = Face(box=(135, 104, 165, 134), score=0.99)
    assert iou((100, 100, 130, 130), jumped.box) == 0.0
    assert tracker.observe(frame, [jumped]) == [1]
    # A face of that size far away, or one of a very different size, is someone else.
    assert tracker.observe(frame, [Face(box=(260, 180, 290, 210), score=0.99)]) == [2]
    assert tracker.observe(frame, [Face(box=(140, 100, 240, 200), score=0.99)]) == [3]


def test_kcf_padding_grows_small_faces_only():
    assert kcf_pad((0, 0, 16, 16)) == KCF_PAD  # capped
    assert kcf_pad((0, 0, 32, 32)) == pytest.approx((KCF_MIN_REGION_PX / 32 - 1) / 2)
    assert kcf_pad((0, 0, KCF_MIN_REGION_PX, KCF_MIN_REGION_PX)) == 0.0
    assert kcf_pad((0, 0, 120, 120)) == 0.0


def test_turn_moves_each_box_to_where_a_still_face_appears_after_the_camera_turned():
    tracker = FaceTracker()
    frame = np.zeros((480, 640, 3), np.uint8)
    tracker.observe(frame, [Face(box=(300, 200, 340, 240), score=0.99,
                                 landmarks=((310.0, 215.0),))])
    focal = 320 / np.tan(1.085 / 2)
    tracker.turn(0.1, focal, 640)  # a left turn: the face slides right
    (track,) = tracker.tracks
    shift = focal * np.tan(0.1)
    assert track.box == pytest.approx((300 + shift, 200, 340 + shift, 240))
    assert track.landmarks[0] == pytest.approx((310 + shift, 215))
    tracker.turn(-0.1, focal, 640)
    assert tracker.tracks[0].box == pytest.approx((300, 200, 340, 240))


@pytest.mark.parametrize("told_of_the_turn", [True, False])
def test_a_face_swept_across_the_image_by_a_turn_keeps_its_id_only_with_the_turn(
        detector, told_of_the_turn):
    # The robot turns right fast: the (still) person sweeps 170 px left per processed frame,
    # far past KCF's search window and the gate that ties detections to tracks.
    frames, truth = moving_frames([FACE], [(420, 150)], (-170, 0), 3)
    focal = 320 / np.tan(1.085 / 2)

    def bearing(box):
        return np.arctan2(320 - (box[0] + box[2]) / 2.0, focal)

    tracker = FaceTracker()
    assert tracker.observe(frames[0], detector.detect(frames[0])) == [1]
    for i in (1, 2):
        if told_of_the_turn:
            tracker.turn(bearing(truth[i - 1][0]) - bearing(truth[i][0]), focal, 640)
            assert tracker.update(frames[i]) == [1]  # outrun KCF: asks for a detection
        else:
            tracker.update(frames[i])
        tracker.observe(frames[i], detector.detect(frames[i]))
    ids = [t.track_id for t in tracker.tracks if t.frames_since_detection == 0]
    assert ids == ([1] if told_of_the_turn else [3])
