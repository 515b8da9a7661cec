"""One frame in, tracked and classified faces out: the entry point for ROS nodes and CLIs.

Running MTCNN and the classifier on every frame manages ~5-10 fps on this 2-core machine;
a robot camera gives 30. The pipeline spends the detector only where it pays:

- the face detector (MTCNN or CenterFace) runs every ``detect_every`` frames, or at once
  when KCF loses a face;
- KCF carries each face in between (about a millisecond per face);
- both work on a frame shrunk by ``scale`` (faces 80 px wide are still 40 px for MTCNN),
  while the classifier crops from the full-resolution frame;
- the classifier runs once per detection round, in ONE batch, on the faces the detector
  just (re)found: new faces get a label at once, known faces add evidence to their smoothed
  label, and KCF-only frames cost no classification;
- every other round classifies the faces' mirror images: the track's smoothing then
  averages a face's verdict with its mirror image's, which is what the photo tools'
  ``MaskClassifier(flip_average=True)`` does in one round at twice the cost.

Every result carries per-stage timings, so a node can log where its time goes.
"""
from __future__ import annotations

import dataclasses
import math
import time
from typing import Optional

import numpy as np

from common.geometry import focal_length_px, wrap_angle
from perception.classifier import CROP_MARGIN, crop_face
from perception.detector import check_image
from perception.tracker import FaceTracker
from perception.types import FrameResult, Track

#: Stages reported in FrameResult.timings (seconds; 0.0 when the stage did not run).
STAGES = ("detect", "track", "classify", "total")


def set_threads(num_threads: int) -> None:
    """Pin OpenCV's pool, and torch's intra-op pool if torch is loaded, to ``num_threads``.

    On the 2-core robot computer torch, OpenBLAS and OpenCV each start one thread per core
    by default and fight each other (and the ROS nodes beside them): MTCNN went from ~80 ms
    to 0.4-3 s per frame with another process busy. One thread each is the measured best
    for a pipeline that shares the machine; more only helps a process that has it alone.
    torch is only touched when something already imported it: the onnx runtime must run
    where torch is not installed (its onnxruntime sessions are built with one thread).
    """
    import sys

    import cv2

    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(int(num_threads))
    cv2.setNumThreads(int(num_threads))


class FramePipeline:
    """Detect every N frames, track with KCF in between, classify new faces in one batch.

    Parameters:
        detector: a FaceDetector (anything with ``detect(image, color='bgr')``).
        classifier: a MaskClassifier (anything with ``classify(list_of_rgb_crops)``).
        tracker: a FaceTracker; None builds one with its defaults.
        detect_every: run the detector on every N-th frame (1 = every frame).
        scale: factor applied to the frame before detection and KCF (1.0 = full size).
            Boxes in the results are always in full-frame pixels.
        num_threads: threads for torch and OpenCV (see ``set_threads``); None leaves the
            process-wide setting alone (for callers that manage threads themselves).
        crop_margin: context around a face box in classifier crops (see crop_face).
        horizontal_fov: the camera's horizontal field of view (radians). With it, ``process``
            takes the camera's yaw and removes the turn between frames from the tracks
            (``FaceTracker.turn``); None ignores any yaw given.

    Classification rounds alternate between the crops and their mirror images (the first
    round after ``reset`` is unmirrored). With the tracker's default smoothing of 0.5, a
    still face's label after two rounds is the mean of both verdicts: on single crops of
    real crowd faces that mean made fewer mistakes than either (perception/models/
    MODEL_CARD.md, "Mirror average"), and alternating gets it without a second crop a round.
    """

    def __init__(self, detector, classifier, tracker: Optional[FaceTracker] = None,
                 detect_every: int = 5, scale: float = 1.0, num_threads: Optional[int] = 1,
                 crop_margin: float = CROP_MARGIN,
                 horizontal_fov: Optional[float] = None) -> None:
        if int(detect_every) != detect_every or detect_every < 1:
            raise ValueError("detect_every must be an integer >= 1, got %r" % (detect_every,))
        if not 0.05 <= scale <= 1.0:
            raise ValueError("scale must be in [0.05, 1], got %r" % (scale,))
        if num_threads is not None and (int(num_threads) != num_threads or num_threads < 1):
            raise ValueError("num_threads must be None or an integer >= 1, got %r"
                             % (num_threads,))
        if not 0.0 <= crop_margin <= 1.0:
            raise ValueError("crop_margin must be in [0, 1], got %r" % (crop_margin,))
        if horizontal_fov is not None and not 0.0 < horizontal_fov < math.pi:
            raise ValueError("horizontal_fov must be None or in (0, pi) radians, got %r"
                             % (horizontal_fov,))
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker if tracker is not None else FaceTracker()
        self.detect_every = int(detect_every)
        self.scale = float(scale)
        self.num_threads = num_threads
        self.crop_margin = float(crop_margin)
        self.horizontal_fov = horizontal_fov
        self.frame_index = -1
        self._last_yaw: Optional[float] = None
        self._classify_rounds = 0
        if num_threads is not None:
            set_threads(num_threads)

    @classmethod
    def default(cls, weights_path: Optional[str] = None, detect_every: int = 5,
                min_face_size: int = 40, scale: float = 0.5, num_threads: Optional[int] = 1,
                horizontal_fov: Optional[float] = None, detector: str = "mtcnn",
                detector_upscale: float = 1.0, runtime: str = "torch",
                flip_average: bool = False, **tracker_options) -> "FramePipeline":
        """Detector, classifier and tracker with settings measured on this machine.

        ``detector`` names the face detector (``perception.detector.DETECTORS``: "mtcnn" or
        "centerface"); ``detector_upscale`` (centerface only) enlarges the frame the
        detector sees, after ``scale``, to find small faces (see FaceDetector).
        ``min_face_size`` is in full-frame pixels (the detector sees it times ``scale``,
        never below MTCNN's 12 px; CenterFace drops faces shorter than that). ``runtime``
        is the classifier's (``perception.classifier.RUNTIMES``): "torch" runs the .pt,
        "onnx" the exported .onnx on onnxruntime, and MTCNN's exported networks too (CenterFace
        is ONNX either way), so the "onnx" pipeline never imports torch (the robot's install
        has none). ``flip_average`` makes the classifier average each crop with its mirror
        image in every round (``MaskClassifier``): for still photos, which get one round;
        video needs no more than the alternating mirror rounds (class docstring). The defaults
        were picked with bench/perception.py on a 640x480 scene with four faces, on the
        shared 2-core machine (load 3-4.7, so every number moves by 2x): MTCNN detection
        at half size 60-125 ms against 75-160 ms at full size, KCF 9-20 ms for four faces,
        the classifier 33-64 ms per batch of four.
        The pipeline ran at 25-38 fps (16.5 at load 4.7) against 6-10 fps (4.3) for
        detect-and-classify on every frame: ratio 3.8-4.2. Every fifth frame keeps a new
        face waiting at most 1/6 s at 30 fps. With two threads instead of one, both fell
        to 4.3 and 0.9 fps: the threads fought the other processes for the two cores.
        """
        from perception.classifier import MaskClassifier
        from perception.detector import FaceDetector

        if min_face_size < 12:
            raise ValueError("min_face_size must be >= 12 px, got %r" % (min_face_size,))
        if num_threads is not None:
            if runtime == "torch":
                import torch  # noqa: F401  (loaded now, so set_threads pins its pool)
            set_threads(num_threads)  # before the networks are built
        face_detector = FaceDetector(min_face_size=max(12, int(round(min_face_size * scale))),
                                     backend=detector, upscale=detector_upscale,
                                     runtime=runtime)
        classifier = MaskClassifier(weights_path, runtime=runtime, flip_average=flip_average)
        return cls(face_detector, classifier, FaceTracker(**tracker_options),
                   detect_every=detect_every, scale=scale, num_threads=num_threads,
                   horizontal_fov=horizontal_fov)

    def reset(self) -> None:
        """Start over (a new video or an unrelated photo): no tracks, detect next frame."""
        self.tracker.reset()
        self.frame_index = -1
        self._last_yaw = None
        self._classify_rounds = 0

    def process(self, frame_bgr: np.ndarray, camera_yaw: Optional[float] = None
                ) -> FrameResult:
        """Run one frame through detection / tracking / classification.

        ``camera_yaw`` (radians, e.g. the robot's odometry yaw when the frame arrived) lets
        the tracker tell the camera's turn from people's motion; see ``horizontal_fov``.
        """
        import cv2

        start = time.perf_counter()
        check_image(frame_bgr)
        if frame_bgr.ndim == 2:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_GRAY2BGR)
        elif frame_bgr.shape[2] == 4:
            frame_bgr = cv2.cvtColor(frame_bgr, cv2.COLOR_BGRA2BGR)
        self.frame_index += 1
        timings = dict.fromkeys(STAGES, 0.0)
        height, width = frame_bgr.shape[:2]
        small = frame_bgr
        if self.scale < 1.0:
            small = cv2.resize(frame_bgr, (max(1, int(round(width * self.scale))),
                                           max(1, int(round(height * self.scale)))),
                               interpolation=cv2.INTER_AREA)
        # Effective scale per axis (rounding the size changes it slightly).
        sx, sy = small.shape[1] / float(width), small.shape[0] / float(height)

        detect = self.frame_index % self.detect_every == 0
        if camera_yaw is not None and self.horizontal_fov is not None:
            if self._last_yaw is not None and len(self.tracker):
                turned = wrap_angle(camera_yaw - self._last_yaw)
                focal = focal_length_px(small.shape[1], self.horizontal_fov)
                self.tracker.turn(turned, focal, small.shape[1])
            self._last_yaw = float(camera_yaw)
        if len(self.tracker):
            # KCF moves the boxes first, also on detection frames: matching detections to
            # where the faces are now, not where they were a frame ago, keeps ids stable
            # when the robot turns.
            t = time.perf_counter()
            lost = self.tracker.update(small)
            timings["track"] += time.perf_counter() - t
            detect = detect or bool(lost)

        fresh = []
        if detect:
            t = time.perf_counter()
            faces = self.detector.detect(small, color="bgr")
            timings["detect"] = time.perf_counter() - t
            t = time.perf_counter()
            fresh = self.tracker.observe(small, faces)
            timings["track"] += time.perf_counter() - t

        if fresh:
            t = time.perf_counter()
            by_id = {track.track_id: track for track in self.tracker.tracks}
            ids = [i for i in fresh if i in by_id]
            columns = -1 if self._classify_rounds % 2 else 1  # -1: mirror image
            self._classify_rounds += 1
            crops = [np.ascontiguousarray(
                crop_face(frame_bgr, _scale_box(by_id[i].box, 1.0 / sx, 1.0 / sy),
                          self.crop_margin)[:, ::columns, ::-1]) for i in ids]
            results = self.classifier.classify(crops)
            self.tracker.add_classifications(dict(zip(ids, results)))
            timings["classify"] = time.perf_counter() - t

        tracks = [_scale_track(track, 1.0 / sx, 1.0 / sy) for track in self.tracker.tracks]
        timings["total"] = time.perf_counter() - start
        return FrameResult(frame_index=self.frame_index, tracks=tracks, timings=timings,
                           detected=detect, frame_size=(width, height))


def _scale_box(box, fx: float, fy: float):
    return (box[0] * fx, box[1] * fy, box[2] * fx, box[3] * fy)


def _scale_track(track: Track, fx: float, fy: float) -> Track:
    if fx == 1.0 and fy == 1.0:
        return track
    return dataclasses.replace(track, box=_scale_box(track.box, fx, fy),
                               landmarks=tuple((x * fx, y * fy) for x, y in track.landmarks))
