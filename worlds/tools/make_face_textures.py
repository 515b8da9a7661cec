"""Make the actors' face textures from held-out photos (run once; the outputs are committed).

Why a tool: the textures are data the worlds depend on, and a reader must be able to see
exactly which photo each came from and redo them. Every source photo is listed in
``perception/holdout.txt`` (set aside from the classifier's training and validation), so a
camera in the simulator never shows the classifier a face it was trained on.

Each photo is cropped to a square around the face that MTCNN finds (the face box fills
about 70 % of the height, like a head seen from the front), resized to 256 px and written as
JPEG into ``worlds/models/mask_patrol_faces/materials/textures/<label>_<n>.jpg``. The
"incorrect" faces (mask worn below the nose) are made from unmasked photos with
``perception.synth`` (a surgical mask warped onto MTCNN's five landmarks, under the nose).

    python3 worlds/tools/make_face_textures.py --datasets ../shared/datasets
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import List, Tuple

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEXTURES = os.path.join(ROOT, "worlds", "models", "mask_patrol_faces", "materials", "textures")
SIZE = 256
#: Face box height as a fraction of the texture height.
FACE_FILL = 0.70

#: (texture name, label, photo in mask-classification/). Only photos of holdout.txt.
FACES: List[Tuple[str, str, str]] = [
    ("masked_1", "masked", "with_mask/Screenshot (251).jpg"),
    ("masked_2", "masked", "with_mask/2465.jpg"),
    ("masked_3", "masked", "with_mask/6415.jpg"),
    ("masked_4", "masked", "with_mask/0999.jpg"),
    ("masked_5", "masked", "with_mask/with_mask085.jpg"),
    ("masked_6", "masked", "with_mask/with_mask075.jpg"),
    ("unmasked_1", "unmasked", "without_mask/261.jpg"),
    ("unmasked_2", "unmasked", "without_mask/270.jpg"),
    ("unmasked_3", "unmasked", "without_mask/178.jpg"),
    ("unmasked_4", "unmasked", "without_mask/187.jpg"),
    ("unmasked_5", "unmasked", "without_mask/324.jpg"),
    ("unmasked_6", "unmasked", "without_mask/27.jpg"),
    ("incorrect_1", "incorrect", "without_mask/370.jpg"),
    ("incorrect_2", "incorrect", "without_mask/augmented_image_127.jpg"),
    ("incorrect_3", "incorrect", "without_mask/100.jpg"),
]


def holdout_names() -> List[str]:
    path = os.path.join(ROOT, "perception", "holdout.txt")
    with open(path) as handle:
        return [line.strip() for line in handle if line.strip() and not line.startswith("#")]


def square_face_crop(image_bgr: np.ndarray, box) -> np.ndarray:
    """A SIZE x SIZE crop centred a little above the face box centre (to keep the hair)."""
    import cv2

    x1, y1, x2, y2 = box
    side = (y2 - y1) / FACE_FILL
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0 - 0.06 * side
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    size = int(round(side))
    h, w = image_bgr.shape[:2]
    pad = max(0, -left, -top, left + size - w, top + size - h)
    if pad:
        image_bgr = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        left, top = left + pad, top + pad
    crop = image_bgr[top:top + size, left:left + size]
    return cv2.resize(crop, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


def main(argv=None) -> int:
    import cv2

    from perception.detector import FaceDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=os.environ.get(
        "MASK_PATROL_DATASETS", os.path.join(ROOT, "..", "shared", "datasets")))
    args = parser.parse_args(argv)
    folder = os.path.join(args.datasets, "mask-classification")
    allowed = set(holdout_names())
    detector = FaceDetector(min_face_size=20, min_score=0.9)
    os.makedirs(TEXTURES, exist_ok=True)
    for name, label, source in FACES:
        if source not in allowed:
            print("%s is not in perception/holdout.txt: refusing to use it" % source, file=sys.stderr)
            return 2
        image = cv2.imread(os.path.join(folder, source))
        if image is None:
            print("cannot read %s" % os.path.join(folder, source), file=sys.stderr)
            return 2
        faces = detector.detect(image)
        if not faces:
            print("no face found in %s" % source, file=sys.stderr)
            return 2
        if label == "incorrect":
            image = synth_mask_below_nose(image, faces[0], seed=int(name.rsplit("_", 1)[1]))
        crop = square_face_crop(image, faces[0].box)
        out = os.path.join(TEXTURES, name + ".jpg")
        cv2.imwrite(out, crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print("%-12s %-9s <- %s (%d bytes)" % (name, label, source, os.path.getsize(out)))
    return 0


def synth_mask_below_nose(image_bgr: np.ndarray, face, seed: int) -> np.ndarray:
    """The same face wearing a surgical mask under the nose (perception.synth, repeatable)."""
    from perception.synth import synthesize

    rgb = np.ascontiguousarray(image_bgr[:, :, ::-1])
    out, _ = synthesize(rgb, face.landmarks, placement="below_nose", style="surgical",
                        rng=np.random.RandomState(seed))
    return np.ascontiguousarray(out[:, :, ::-1])


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
