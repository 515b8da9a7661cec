"""`heatmap`: Grad-CAM overlays that show where the mask classifier looked.

A classifier that says "masked" because of a blue background rather than the mask is a
classifier that fails on the robot. Grad-CAM (the ``grad-cam`` package) weights the last
convolutional block of the MobileNetV2 (``model.features[-1]``) by the gradient of the
chosen class and paints the result over the face: warm where the evidence was.

Input is either one face crop (``--crop``: the whole image is the face) or a photo, in
which case MTCNN finds the faces and each gets its own overlay, box and label.
"""
from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

from perception.cli import make_parser, run
from common.errors import InputError
from perception.types import LABELS, Classification

PROG = "heatmap"


def build_parser():
    parser = make_parser(
        PROG,
        "Grad-CAM heatmaps of the mask classifier (on MobileNetV2's last conv block),\n"
        "overlaid on the face and saved as PNG. Without --crop the faces are found with\n"
        "MTCNN and each one gets an overlay; with --crop the whole image is the face.",
        epilog="examples:\n"
               "  heatmap group.jpg --out group_cam.png\n"
               "  heatmap face.png --crop --target unmasked --out why_unmasked.png")
    parser.add_argument("input", metavar="IMAGE", help="a photo, or a face crop with --crop")
    parser.add_argument("--out", metavar="PNG",
                        help="where to write the overlay (default: out/heatmap/<name>.png)")
    parser.add_argument("--crop", action="store_true",
                        help="the image is already a face crop: explain the whole image")
    parser.add_argument("--target", choices=LABELS, default=None,
                        help="class to explain (default: the predicted class of each face)")
    parser.add_argument("--weights", metavar="PATH",
                        help="classifier weights (default: the shipped "
                             "perception/models/mask_classifier.pt)")
    parser.add_argument("--min-face-size", type=int, default=20, metavar="PX",
                        help="smallest face MTCNN looks for (default 20)")
    return parser


class GradCamExplainer:
    """Grad-CAM maps for a MaskClassifier, one per RGB crop, at the crop's own size."""

    def __init__(self, classifier) -> None:
        from pytorch_grad_cam import GradCAM

        self.classifier = classifier
        self.target_layer = classifier.model.features[-1]
        self._cam = GradCAM(model=classifier.model, target_layers=[self.target_layer])

    def explain(self, crops_rgb: Sequence[np.ndarray], target: Optional[str] = None
                ) -> List[Tuple[np.ndarray, Classification]]:
        """(heat map in [0, 1] of the crop's height x width, classification) per crop."""
        import cv2
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        if target is not None and target not in LABELS:
            raise ValueError("target must be one of %s, got %r" % (LABELS, target))
        results = self.classifier.classify(crops_rgb)
        targets = [ClassifierOutputTarget(LABELS.index(target or r.label)) for r in results]
        cams = self._cam(input_tensor=self.classifier.preprocess(crops_rgb), targets=targets)
        maps = []
        for crop, cam in zip(crops_rgb, cams):
            heat = cv2.resize(cam.astype(np.float32), (crop.shape[1], crop.shape[0]),
                              interpolation=cv2.INTER_CUBIC)
            maps.append(np.clip(heat, 0.0, 1.0))
        return list(zip(maps, results))


def overlay(image_rgb: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """grad-cam's show_cam_on_image: JET colours blended half and half, RGB uint8."""
    from pytorch_grad_cam.utils.image import show_cam_on_image

    return show_cam_on_image(image_rgb.astype(np.float32) / 255.0, heat, use_rgb=True)


def heatmap_crop(explainer: GradCamExplainer, crop_bgr: np.ndarray,
                 target: Optional[str] = None) -> Tuple[np.ndarray, Classification]:
    """Overlay for one face crop, BGR, at least 256 px so the map is readable."""
    import cv2

    from perception.drawing import color_for

    rgb = np.ascontiguousarray(crop_bgr[:, :, ::-1])
    (heat, result), = explainer.explain([rgb], target)
    image = cv2.cvtColor(overlay(rgb, heat), cv2.COLOR_RGB2BGR)
    if min(image.shape[:2]) < 256:
        factor = 256.0 / min(image.shape[:2])
        image = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    text = "%s %.2f%s" % (result.label, result.score, " (cam: %s)" % target if target else "")
    cv2.rectangle(image, (0, 0), (image.shape[1], 22), color_for(result.label), -1)
    cv2.putText(image, text, (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1,
                cv2.LINE_AA)
    return image, result


def heatmap_photo(explainer: GradCamExplainer, detector, image_bgr: np.ndarray,
                  target: Optional[str] = None) -> Tuple[np.ndarray, List[Classification]]:
    """Photo with a Grad-CAM overlay over each detected face's crop, plus box and label."""
    from perception.classifier import crop_face, crop_square
    from perception.drawing import draw_tracks
    from perception.types import Track

    faces = detector.detect(image_bgr, color="bgr")
    if not faces:
        return image_bgr.copy(), []
    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    crops = [np.ascontiguousarray(crop_face(rgb, face.box)) for face in faces]
    explained = explainer.explain(crops, target)
    out_rgb = rgb.copy()
    height, width = rgb.shape[:2]
    # Paint the smallest faces last so a big face's square never hides a small one.
    for index in sorted(range(len(faces)), key=lambda i: -faces[i].width):
        heat, _ = explained[index]
        left, top, size = crop_square(faces[index].box)
        x1, y1 = max(0, left), max(0, top)
        x2, y2 = min(width, left + size), min(height, top + size)
        if x2 <= x1 or y2 <= y1:
            continue
        region_heat = heat[y1 - top:y2 - top, x1 - left:x2 - left]
        out_rgb[y1:y2, x1:x2] = overlay(rgb[y1:y2, x1:x2], region_heat)
    tracks = [Track(track_id=i + 1, box=face.box, label=result.label, score=result.score,
                    face_score=face.score)
              for i, (face, (_, result)) in enumerate(zip(faces, explained))]
    drawn = draw_tracks(np.ascontiguousarray(out_rgb[:, :, ::-1]), tracks)
    return drawn, [result for _, result in explained]


def heatmap(args) -> None:
    import cv2

    from perception.classifier import MaskClassifier
    from perception.video import read_image

    out = args.out or os.path.join(
        "out", "heatmap", os.path.splitext(os.path.basename(args.input))[0] + ".png")
    if not out.lower().endswith(".png"):
        raise InputError("--out %s must end in .png" % out)
    image = read_image(args.input)
    explainer = GradCamExplainer(MaskClassifier(args.weights))
    if args.crop:
        drawn, result = heatmap_crop(explainer, image, args.target)
        summary = "%s %.2f" % (result.label, result.score)
    else:
        from perception.detector import FaceDetector

        if args.min_face_size < 12:
            raise InputError("--min-face-size %d is below MTCNN's 12 px" % args.min_face_size)
        drawn, results = heatmap_photo(explainer, FaceDetector(args.min_face_size), image,
                                       args.target)
        if not results:
            raise InputError("no face found in %s; pass --crop if the image is already a face "
                             "crop, or a lower --min-face-size" % args.input)
        summary = ", ".join("%s %.2f" % (r.label, r.score) for r in results)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    ok, data = cv2.imencode(".png", drawn)
    if not ok:  # pragma: no cover - PNG encoding of a uint8 BGR image does not fail
        raise InputError("cannot encode the overlay for %s" % out)
    data.tofile(out)
    print("%s: %s -> %s" % (PROG, summary, out))


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    return run(PROG, lambda: heatmap(args))


if __name__ == "__main__":
    sys.exit(main())
