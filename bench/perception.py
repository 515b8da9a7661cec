#!/usr/bin/env python3
"""Speed benchmark: FramePipeline against detector + classifier on every frame, per detector.

    python3 bench/perception.py [--frames 150] [--detectors mtcnn,centerface]

Builds a 640x480 video of four real faces from tests/fixtures (two masked, two unmasked)
moving over a wall, writes it as MP4, reads it back and feeds every decoded frame to both
contenders in ONE process, interleaved frame by frame so that both see the same load from
whatever else runs on the machine; once per detector (MTCNN, CenterFace), each against the
naive loop with the same detector. Reports fps of each, their ratio, per-stage latency
(median / p95), the detector's per-frame latency, peak memory, how many ground-truth faces
each found, and whether both flag the same persons as unmasked. The last line is
``ratio=<pipeline fps / naive fps>`` for the first detector (the pipeline's default).

Timings on a shared 2-core machine are noisy: compare runs, never assert on them.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Dict, List, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and not __package__:
    # Run as a script, sys.path[0] is bench/ and `import perception` would find this file.
    sys.path[0] = ROOT

import numpy as np  # noqa: E402

from perception.types import ALERT_LABELS  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "fixtures")
#: (fixture, ground-truth label): two masked and two unmasked people.
PEOPLE = (("with_mask/with_mask075.jpg", "masked"), ("without_mask/152.jpg", "unmasked"),
          ("without_mask/187.jpg", "unmasked"), ("with_mask/with_mask085.jpg", "masked"))
WIDTH, HEIGHT = 640, 480


# -- the scene ---------------------------------------------------------------------------------
def face_sprite(path: str, face_px: int, detector) -> Tuple[np.ndarray, np.ndarray, Tuple]:
    """A head cut from a fixture photo: BGR patch, soft elliptical alpha, face box in it."""
    import cv2

    from perception.classifier import crop_face
    from perception.video import read_image

    image = read_image(path)
    faces = detector.detect(image)
    if not faces:
        raise RuntimeError("no face found in fixture %s" % path)
    face = faces[0]
    margin = 0.35
    patch = crop_face(image, face.box, margin)
    side = int(round(face_px * (1.0 + 2.0 * margin)))
    factor = side / float(patch.shape[0])
    patch = cv2.resize(patch, (side, side), interpolation=cv2.INTER_AREA)
    alpha = np.zeros((side, side), np.float32)
    cv2.ellipse(alpha, (side // 2, side // 2), (int(side * 0.42), int(side * 0.49)), 0, 0, 360,
                1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), side * 0.03)[:, :, None]
    # Where the detector's box sits inside the patch (the crop is centred on it).
    w, h = face.width * factor, face.height * factor
    box = ((side - w) / 2.0, (side - h) / 2.0, (side + w) / 2.0, (side + h) / 2.0)
    return patch, alpha, box


def background() -> np.ndarray:
    import cv2
    from skimage import data

    wall = cv2.resize(data.brick(), (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)
    tint = np.array([0.75, 0.85, 1.0], np.float32)  # warm, like indoor light
    return np.clip(cv2.cvtColor(wall, cv2.COLOR_GRAY2BGR) * tint + 20, 0, 255).astype(np.uint8)


def build_scene(path: str, frames: int, fps: float = 30.0) -> List[List[Tuple[Tuple, str]]]:
    """Write the benchmark video; returns per frame the (face box, label) of each person."""
    from perception.detector import FaceDetector
    from perception.video import open_video_writer

    detector = FaceDetector()
    sprites = [face_sprite(os.path.join(FIXTURES, name), 86 + 8 * i, detector) + (label,)
               for i, (name, label) in enumerate(PEOPLE)]
    wall = background()
    writer = open_video_writer(path, fps, (WIDTH, HEIGHT))
    truth = []
    try:
        for t in range(frames):
            frame = wall.astype(np.float32)
            people = []
            for i, (patch, alpha, box, label) in enumerate(sprites):
                side = patch.shape[0]
                qx, qy = (i % 2) * WIDTH // 2, (i // 2) * HEIGHT // 2
                room_x, room_y = WIDTH // 2 - side, HEIGHT // 2 - side
                phase = 1.7 * i
                x = qx + int(room_x * (0.5 + 0.5 * np.sin(2 * np.pi * t / 110.0 + phase)))
                y = qy + int(max(0, room_y) * (0.5 + 0.5 * np.sin(2 * np.pi * t / 75.0 + phase)))
                region = frame[y:y + side, x:x + side]
                region[:] = region * (1.0 - alpha) + patch * alpha
                people.append(((x + box[0], y + box[1], x + box[2], y + box[3]), label))
            writer.write(frame.astype(np.uint8))
            truth.append(people)
    finally:
        writer.release()
    return truth


def read_frames(path: str):
    import cv2

    capture = cv2.VideoCapture(path)
    if not capture.isOpened():
        raise RuntimeError("cannot read back %s" % path)
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield frame
    finally:
        capture.release()


# -- the contenders ------------------------------------------------------------------------
class Naive:
    """What a first version does: the detector and the classifier on every frame."""

    def __init__(self, detector, classifier) -> None:
        self.detector, self.classifier = detector, classifier

    def process(self, frame: np.ndarray) -> Tuple[List[Tuple[Tuple, str]], Dict[str, float]]:
        from perception.classifier import crop_face

        t0 = time.perf_counter()
        faces = self.detector.detect(frame, color="bgr")
        t1 = time.perf_counter()
        crops = [np.ascontiguousarray(crop_face(frame, f.box)[:, :, ::-1]) for f in faces]
        results = self.classifier.classify(crops)
        t2 = time.perf_counter()
        found = [(f.box, r.label) for f, r in zip(faces, results)]
        return found, {"detect": t1 - t0, "classify": t2 - t1, "total": t2 - t0}


class Tracked:
    """The FramePipeline, keeping its latest tracks for the optional annotated video."""

    def __init__(self, pipeline) -> None:
        self.pipeline = pipeline
        self.tracks: list = []

    def process(self, frame: np.ndarray) -> Tuple[List[Tuple[Tuple, str]], Dict[str, float]]:
        result = self.pipeline.process(frame)
        self.tracks = result.tracks
        return [(t.box, t.label) for t in result.tracks if not t.lost_frames], result.timings


# -- scoring ----------------------------------------------------------------------------------
class Score:
    """Matches a contender's faces to the ground truth, frame by frame."""

    def __init__(self, people: int) -> None:
        self.hits = 0
        self.truths = 0
        self.alert_votes = [0] * people
        self.seen = [0] * people

    def add(self, truth: Sequence[Tuple[Tuple, str]], found: Sequence[Tuple[Tuple, str]]):
        from perception.tracker import match_boxes

        self.truths += len(truth)
        pairs = match_boxes([b for b, _ in truth], [b for b, _ in found], 0.3)
        for person, face in pairs:
            self.hits += 1
            self.seen[person] += 1
            self.alert_votes[person] += found[face][1] in ALERT_LABELS

    def unmasked(self) -> List[int]:
        """Persons flagged unmasked/incorrect in most of the frames where they were found."""
        return [p for p, seen in enumerate(self.seen) if seen and 2 * self.alert_votes[p] > seen]


def stage_line(name: str, values: Sequence[float]) -> str:
    if not values:
        return "  %-9s never ran" % name
    ms = np.asarray(values) * 1000.0
    return "  %-9s median %7.1f ms  p95 %7.1f ms  (%d frames)" % (
        name, np.median(ms), np.percentile(ms, 95), len(ms))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def contest(args, truth, detector: str) -> float:
    """Naive against the pipeline, both with ``detector``, interleaved frame by frame; prints
    their fps, stage latencies and scores, and returns the fps ratio."""
    from perception.detector import FaceDetector
    from perception.pipeline import FramePipeline

    pipeline = FramePipeline.default(weights_path=args.weights, detect_every=args.detect_every,
                                     scale=args.scale, min_face_size=args.min_face_size,
                                     num_threads=args.threads, detector=detector)
    naive = Naive(FaceDetector(min_face_size=args.min_face_size, backend=detector),
                  pipeline.classifier)
    print("\n-- detector %s\nweights: %s" % (detector, pipeline.classifier.weights_path))
    print("threads: %d, naive: %s(min %d px, full frame) + classifier every frame; "
          "pipeline: detect every %d on a x%.2f frame, KCF between"
          % (args.threads, detector, args.min_face_size, args.detect_every, args.scale))
    memory_before = peak_mb()

    first = next(read_frames(args.video))
    for _ in range(2):  # warm-up: first calls allocate and pick kernels
        naive.process(first)
        pipeline.process(first)
    pipeline.reset()

    tracked = Tracked(pipeline)
    contenders = {"naive": naive.process, "pipeline": tracked.process}
    stages = {name: {} for name in contenders}
    scores = {name: Score(len(PEOPLE)) for name in contenders}
    totals = dict.fromkeys(contenders, 0.0)
    annotated = None
    count = 0
    for index, frame in enumerate(read_frames(args.video)):
        if index >= len(truth):
            break
        count += 1
        for name, run in contenders.items():
            found, timings = run(frame)
            totals[name] += timings["total"]
            for stage, seconds in timings.items():
                if seconds > 0:
                    stages[name].setdefault(stage, []).append(seconds)
            scores[name].add(truth[index], found)
        if args.annotated:
            from perception.drawing import draw_tracks
            from perception.video import open_video_writer

            if annotated is None:
                path = args.annotated.replace(".mp4", "_%s.mp4" % detector)
                annotated = open_video_writer(path, 30.0, (WIDTH, HEIGHT))
            annotated.write(draw_tracks(frame, tracked.tracks))
    if annotated is not None:
        annotated.release()

    fps = {name: count / totals[name] for name in contenders}
    for name in contenders:
        score = scores[name]
        print("%s: %.1f fps, found %d of %d faces (%.0f%%), unmasked persons %s"
              % (name, fps[name], score.hits, score.truths, 100.0 * score.hits / score.truths,
                 score.unmasked()))
        for stage in ("detect", "track", "classify", "total"):
            if stage in stages[name] or name == "pipeline":
                print(stage_line(stage, stages[name].get(stage, [])))
    truth_unmasked = [p for p, (_, label) in enumerate(PEOPLE) if label in ALERT_LABELS]
    same = scores["naive"].unmasked() == scores["pipeline"].unmasked()
    print("ground-truth unmasked persons %s; naive and pipeline agree: %s"
          % (truth_unmasked, "yes" if same else "NO"))
    print("peak memory (ru_maxrss): %.0f MB after loading models, %.0f MB after both runs"
          % (memory_before, peak_mb()))
    detect_ms = [1000.0 * float(np.median(stages[name].get("detect", [0.0])))
                 for name in contenders]
    print("%s per-frame detection latency: median %.1f ms on the full frame, %.1f ms on the "
          "pipeline's x%.2f frame" % (detector, detect_ms[0], detect_ms[1], args.scale))
    ratio = fps["pipeline"] / fps["naive"]
    print("ratio[%s]=%.2f" % (detector, ratio))
    return ratio


def main(argv=None) -> int:
    from perception.detector import DETECTORS

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=150, help="video length (default 150)")
    parser.add_argument("--video", default="/tmp/mask_patrol_bench.mp4",
                        help="where to write the benchmark video")
    parser.add_argument("--detect-every", type=int, default=5)
    parser.add_argument("--scale", type=float, default=0.5)
    parser.add_argument("--min-face-size", type=int, default=40)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch/OpenCV threads (default 1, see docs/SETUP.md)")
    parser.add_argument("--weights", default=None, help="classifier weights")
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help="detectors to run, in turn (default %(default)s; the last line's "
                             "ratio is the first one's)")
    parser.add_argument("--annotated", default=None,
                        help="also write the pipeline's annotated video here (one per "
                             "detector: NAME_<detector>.mp4)")
    args = parser.parse_args(argv)
    detectors = [d.strip() for d in args.detectors.split(",") if d.strip()]
    unknown = [d for d in detectors if d not in DETECTORS]
    if unknown or not detectors:
        parser.error("--detectors takes %s, got %r" % (", ".join(DETECTORS), args.detectors))

    from perception.pipeline import set_threads

    set_threads(args.threads)
    truth = build_scene(args.video, args.frames)
    print("video: %s, %d frames %dx%d, %d people (%s)"
          % (args.video, len(truth), WIDTH, HEIGHT, len(PEOPLE),
             ", ".join(label for _, label in PEOPLE)))
    ratios = [contest(args, truth, detector) for detector in detectors]
    print("ratio=%.2f" % ratios[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
