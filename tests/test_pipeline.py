"""FramePipeline on real faces moving over a wall: cadence, ids, boxes, timings, loss."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import FIXTURES, astronaut_bgr, box_iou, head_patch, moving_frames, paste, wall
from perception.pipeline import STAGES, FramePipeline
from perception.tracker import FaceTracker
from perception.types import LABELS, FrameResult

FACES = [os.path.join(FIXTURES, "without_mask", "152.jpg"),
         os.path.join(FIXTURES, "with_mask", "with_mask075.jpg")]


def inside(point, box) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


@pytest.fixture()
def pipeline(detector, classifier):
    return FramePipeline(detector, classifier, FaceTracker(), detect_every=4, scale=0.5)


def test_detects_every_n_frames_and_tracks_in_between(pipeline):
    frames, pasted = moving_frames(FACES, [(40, 60), (380, 220)], (3, 1), 10)
    results = [pipeline.process(frame) for frame in frames]
    assert [r.detected for r in results] == [i % 4 == 0 for i in range(10)]
    assert [r.frame_index for r in results] == list(range(10))
    for result in results:
        assert isinstance(result, FrameResult) and result.frame_size == (640, 480)
        assert set(result.timings) == set(STAGES)
        parts = sum(result.timings[s] for s in ("detect", "track", "classify"))
        assert 0 < parts <= result.timings["total"]
        # Only detection frames pay for MTCNN and the classifier.
        assert (result.timings["detect"] > 0) == result.detected
        assert (result.timings["classify"] > 0) == result.detected
        assert len(result.tracks) == 2
        assert all(t.label in LABELS for t in result.tracks)
    # The same two ids from start to end, each staying on its own (moving) head, with boxes
    # in full-frame pixels although detection and KCF ran at half size.
    first_ids = sorted(t.track_id for t in results[0].tracks)
    for result, heads in zip(results, pasted):
        assert sorted(t.track_id for t in result.tracks) == first_ids
        for track in result.tracks:
            assert sum(inside(track.center, head) for head in heads) == 1
            assert 30 < track.box[2] - track.box[0] < 150
    start = {t.track_id: [inside(t.center, h) for h in pasted[0]] for t in results[0].tracks}
    end = {t.track_id: [inside(t.center, h) for h in pasted[-1]] for t in results[-1].tracks}
    assert start == end


def test_a_lost_track_triggers_detection_at_once(pipeline):
    # The right face slides out of the picture fast; the frame where KCF loses it must run
    # the detector even though it is not a scheduled detection frame.
    stay, leave = head_patch(FACES[0], 150), head_patch(FACES[1], 150)
    sequence = []
    for i in range(6):
        frame = wall()
        paste(frame, stay, 40, 60)
        paste(frame, leave, 430 + 60 * i, 200)
        sequence.append(frame)
    results = [pipeline.process(frame) for frame in sequence]
    assert len(results[0].tracks) == 2
    unscheduled = [r.detected for r in results if r.frame_index % 4 != 0]
    assert any(unscheduled), "KCF lost a face but the detector was not run"
    assert len(results[-1].tracks) == 1  # the face that stayed is still followed


def test_reset_starts_over_with_a_detection(pipeline):
    image = astronaut_bgr()
    pipeline.process(image)
    assert not pipeline.process(image).detected
    pipeline.reset()
    result = pipeline.process(image)
    assert result.detected and result.frame_index == 0 and len(result.tracks) == 1


def test_default_pipeline_on_a_real_photo_and_gray_input():
    import torch

    pipeline = FramePipeline.default(detect_every=3)
    assert torch.get_num_threads() == 1  # set deliberately, see docs/SETUP.md
    image = astronaut_bgr()
    result = pipeline.process(image)
    (track,) = result.tracks
    # Boxes come back at full size (default() detects on a half-size frame).
    (face,) = pipeline.detector.detect(image)
    assert box_iou(track.box, face.box) > 0.6
    pipeline.reset()
    gray = pipeline.process(np.ascontiguousarray(image[:, :, 1]))
    assert len(gray.tracks) == 1


def test_default_pipeline_with_centerface_finds_the_same_face():
    pipeline = FramePipeline.default(detector="centerface", detector_upscale=2.0)
    assert pipeline.detector.backend == "centerface" and pipeline.detector.upscale == 2.0
    image = astronaut_bgr()
    (track,) = pipeline.process(image).tracks
    (face,) = FramePipeline.default().detector.detect(image)  # MTCNN at half size
    assert box_iou(track.box, face.box) > 0.6
    assert len(track.landmarks) == 5


def test_default_pipeline_passes_the_runtime_to_the_classifier():
    """runtime="onnx" gives the exported classifier, with the torch runtime's probabilities."""
    onnx_pipeline = FramePipeline.default(detector="centerface", runtime="onnx")
    torch_pipeline = FramePipeline.default(detector="centerface")
    assert (onnx_pipeline.classifier.runtime, torch_pipeline.classifier.runtime) == (
        "onnx", "torch")
    image = astronaut_bgr()
    (a,) = onnx_pipeline.process(image).tracks
    (b,) = torch_pipeline.process(image).tracks
    assert a.box == b.box and a.label == b.label
    assert np.allclose(a.probabilities, b.probabilities, atol=1e-4)
    with pytest.raises(ValueError, match="runtime must be one of torch, onnx"):
        FramePipeline.default(detector="centerface", runtime="tflite")


class CropRecorder:
    """The real classifier, keeping each round's crops (to see what the pipeline gave it)."""

    def __init__(self, classifier) -> None:
        self.classifier, self.rounds = classifier, []

    def classify(self, crops):
        self.rounds.append([crop.copy() for crop in crops])
        return self.classifier.classify(crops)


def test_every_other_round_classifies_mirror_images_and_the_track_averages_both(detector):
    from perception.classifier import MaskClassifier

    plain = MaskClassifier(flip_average=False)
    recorder = CropRecorder(plain)
    pipeline = FramePipeline(detector, recorder, FaceTracker(), detect_every=1)
    image = astronaut_bgr()
    first = pipeline.process(image).tracks[0]
    (second,) = pipeline.process(image).tracks
    (crop,), (mirrored,) = recorder.rounds
    assert np.array_equal(mirrored, crop[:, ::-1])
    one_side, other_side = plain.probabilities([crop, crop[:, ::-1].copy()])
    assert np.allclose(first.probabilities, one_side, atol=1e-6)
    # Smoothing 0.5: after two rounds the still face's label is the mean of both verdicts.
    assert np.allclose(second.probabilities, (one_side + other_side) / 2.0, atol=1e-6)
    pipeline.process(image)
    assert np.array_equal(recorder.rounds[2][0], crop)  # then unmirrored again
    pipeline.reset()
    pipeline.process(image)
    assert np.array_equal(recorder.rounds[3][0], crop)  # a reset starts unmirrored
    assert FramePipeline.default().classifier.flip_average is False  # no double cost
    assert FramePipeline.default(flip_average=True).classifier.flip_average  # still photos


def test_default_pipeline_names_the_detector_choices():
    with pytest.raises(ValueError) as info:
        FramePipeline.default(detector="haar")
    assert "'haar'" in str(info.value) and "mtcnn, centerface" in str(info.value)


@pytest.mark.parametrize("kwargs", [{"detect_every": 0}, {"detect_every": 1.5},
                                    {"scale": 0.0}, {"scale": 1.5}, {"num_threads": 0},
                                    {"crop_margin": -0.1}])
def test_constructor_rejects_bad_values(detector, classifier, kwargs):
    with pytest.raises(ValueError) as info:
        FramePipeline(detector, classifier, **kwargs)
    assert next(iter(kwargs)) in str(info.value)


def test_bad_frames_raise_input_error(pipeline):
    from common.errors import InputError

    with pytest.raises(InputError):
        pipeline.process(np.zeros((480, 640, 3), np.float64))
