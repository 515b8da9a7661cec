#!/usr/bin/env python3
"""Same answers: the onnx runtime's pipeline against the torch runtime's, same detector.

    python3 bench/same_answers.py [--detectors centerface,mtcnn] [--frames 150]
                                  [--data ../shared/datasets]

Both runtimes' ``FramePipeline.default`` see the same inputs: every frame of the bench video
(bench/perception.py's scene: four real faces moving over a wall, detect every 5th frame, KCF
between) and every test photo (tests/fixtures, and with ``--data`` the Kaggle test split),
one photo at a time after a reset. A face of the torch pipeline counts as the same answer
when the onnx pipeline has a face in the same frame whose box overlaps it with IoU >= 0.9
(one-to-one, best overlap first) and carries the same label. Prints, per detector and input,
faces, matched boxes and same labels; the last line is ``same=<worst fraction>``, which
issue 19 wants at >= 0.99.

With detector mtcnn the onnx runtime runs MTCNN's ONNX export too (perception/mtcnn_onnx.py),
so the pipelines differ in the detector as well; to see that detector alone, the same inputs
also go through ``FaceDetector(backend="mtcnn")`` in both runtimes (whole frames and photos,
no tracking): a torch face counts when an onnx face overlaps it with IoU >= 0.9. Those
fractions count in ``same=`` too.
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Sequence, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if __name__ == "__main__" and not __package__:
    sys.path[0] = ROOT  # run as a script: bench/ would shadow the perception package


MIN_IOU = 0.9
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


class Tally:
    """Faces of the reference (torch) pipeline, and how many the other one matched."""

    def __init__(self) -> None:
        self.faces = self.boxes = self.labels = self.extra = 0

    def add(self, reference: Sequence[Tuple], other: Sequence[Tuple]) -> None:
        """Each argument: (box, label) of every face a pipeline reported in one frame."""
        from perception.mtcnn_export import pair_by_iou

        pairs = pair_by_iou([a[0] for a in reference], [b[0] for b in other], MIN_IOU)
        self.boxes += len(pairs)
        self.labels += sum(reference[i][1] == other[j][1] for i, j in pairs)
        self.faces += len(reference)
        self.extra += len(other) - len(pairs)

    def fraction(self) -> float:
        return self.labels / float(self.faces) if self.faces else 1.0

    def line(self, name: str) -> str:
        return ("  %-34s %5d faces, box IoU >= %.1f: %5d, same label too: %5d (%.2f%%), "
                "onnx-only faces: %d" % (name, self.faces, MIN_IOU, self.boxes, self.labels,
                                         100.0 * self.fraction(), self.extra))


def faces_of(result) -> List[Tuple]:
    return [(t.box, t.label) for t in result.tracks if not t.lost_frames]


def photo_paths(data: str) -> Dict[str, List[str]]:
    sets = {"tests/fixtures photos": [
        os.path.join(FIXTURES, folder, name) for folder in ("with_mask", "without_mask")
        for name in sorted(os.listdir(os.path.join(FIXTURES, folder)))]}
    if data:
        from perception.kaggle import load_kaggle, load_test_split

        sets["Kaggle test split photos"] = [e.path for e in load_kaggle(data, load_test_split())]
    return sets


def detector_only(video: str, frames: int, photos: Dict[str, List[str]]) -> float:
    """MTCNN torch against MTCNN onnx, detector alone; prints a line per input and returns
    the worst fraction of torch faces found again."""
    from bench.perception import read_frames
    from perception.detector import FaceDetector
    from perception.mtcnn_export import ROW_HEADER, compare
    from perception.video import read_image

    reference = FaceDetector(backend="mtcnn", runtime="torch")
    other = FaceDetector(backend="mtcnn", runtime="onnx")
    print("-- detector mtcnn alone (min face 20 px, whole images): torch against onnx")
    inputs = [("bench video (%d frames)" % frames, read_frames(video))]
    inputs += [("%s (%d)" % (name, len(paths)), (read_image(p) for p in paths))
               for name, paths in photos.items()]
    worst = 1.0
    for name, images in inputs:
        tally = compare(images, reference, other)
        cells = ["%s: %s" % pair for pair in zip(ROW_HEADER[1:], tally.row()[1:])]
        print("  %-34s %s" % (name, ", ".join(cells)))
        worst = min(worst, tally.fraction())
    return worst


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--detectors", default="centerface,mtcnn")
    parser.add_argument("--frames", type=int, default=150, help="bench video length")
    parser.add_argument("--video", default="/tmp/mask_patrol_same_answers.mp4")
    parser.add_argument("--data", default=None, help="datasets folder: add the Kaggle split")
    args = parser.parse_args(argv)

    from bench.perception import build_scene, read_frames
    from perception.pipeline import FramePipeline
    from perception.video import read_image

    build_scene(args.video, args.frames)
    photos = photo_paths(args.data)
    worst = 1.0
    for detector in [d.strip() for d in args.detectors.split(",") if d.strip()]:
        pipelines = {runtime: FramePipeline.default(detector=detector, runtime=runtime)
                     for runtime in ("torch", "onnx")}
        print("-- detector %s: torch runtime (reference) against onnx runtime" % detector)
        tally = Tally()
        for frame in read_frames(args.video):
            tally.add(*(faces_of(p.process(frame)) for p in pipelines.values()))
        print(tally.line("bench video (%d frames)" % args.frames))
        worst = min(worst, tally.fraction())
        for name, paths in photos.items():
            tally = Tally()
            for path in paths:
                image = read_image(path)
                results = []
                for pipeline in pipelines.values():
                    pipeline.reset()
                    results.append(faces_of(pipeline.process(image)))
                tally.add(*results)
            print(tally.line("%s (%d)" % (name, len(paths))))
            worst = min(worst, tally.fraction())
        if detector == "mtcnn":
            worst = min(worst, detector_only(args.video, args.frames, photos))
    print("same=%.4f" % worst)
    return 0


if __name__ == "__main__":
    sys.exit(main())
