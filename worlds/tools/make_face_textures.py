"""Make the actors' face textures from held-out photos (run once; the outputs are committed).

Why a tool: the textures are data the worlds depend on, and a reader must be able to see
exactly which photo each came from and redo them. Every source photo is listed in
``perception/holdout.txt`` (set aside from the classifier's training and validation), so a
camera in the simulator never shows the classifier a face it was trained on.

Two sources. Portraits of ``mask-classification/``: the photo is cropped to a square around
the face that MTCNN finds. Crowd photos of ``mask-detection-kaggle/`` (real masks worn below
the nose, turned heads, glasses, dim light): the square is cut around the photo's largest
hand-labelled box of the texture's label. Either way the face box fills about 70 % of the
height, like a head seen from the front, and the square is resized to 256 px and written as
JPEG into ``worlds/models/mask_patrol_faces/materials/textures/<label>_<n>.jpg``.

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

#: Prefix of the sources that are Kaggle crowd photos (as listed in holdout.txt).
KAGGLE = "mask-detection-kaggle/images/"

#: (texture name, label, source photo). Only photos of holdout.txt. Seven of the fifteen are
#: real crowd faces (worn by 11 of the 23 actors): every ``incorrect`` face is a real mask
#: below the nose; glasses, a hand at the mask, a turned head, dim light. ``masked_2`` was
#: the portrait ``with_mask/2465.jpg`` (a red mask printed with a cartoon face) until the
#: classifier trained on the crowds, which takes that print seen from 45 degrees for a mask
#: pulled down (perception/models/MODEL_CARD.md, "Known limits").
FACES: List[Tuple[str, str, str]] = [
    ("masked_1", "masked", "with_mask/Screenshot (251).jpg"),
    ("masked_2", "masked", KAGGLE + "maksssksksss582.jpg"),
    ("masked_3", "masked", "with_mask/6415.jpg"),
    ("masked_4", "masked", KAGGLE + "maksssksksss626.jpg"),
    ("masked_5", "masked", "with_mask/with_mask085.jpg"),
    ("masked_6", "masked", KAGGLE + "maksssksksss198.jpg"),
    ("unmasked_1", "unmasked", "without_mask/261.jpg"),
    ("unmasked_2", "unmasked", "without_mask/270.jpg"),
    ("unmasked_3", "unmasked", KAGGLE + "maksssksksss442.jpg"),
    ("unmasked_4", "unmasked", "without_mask/187.jpg"),
    ("unmasked_5", "unmasked", "without_mask/324.jpg"),
    ("unmasked_6", "unmasked", "without_mask/27.jpg"),
    ("incorrect_1", "incorrect", KAGGLE + "maksssksksss525.jpg"),
    ("incorrect_2", "incorrect", KAGGLE + "maksssksksss832.jpg"),
    ("incorrect_3", "incorrect", KAGGLE + "maksssksksss562.jpg"),
]


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

    from perception.data import load_holdout
    from perception.detector import FaceDetector

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=os.environ.get(
        "MASK_PATROL_DATASETS", os.path.join(ROOT, "..", "shared", "datasets")))
    args = parser.parse_args(argv)
    folder = os.path.join(args.datasets, "mask-classification")
    allowed = load_holdout()
    detector = FaceDetector(min_face_size=20, min_score=0.9)
    os.makedirs(TEXTURES, exist_ok=True)
    for name, label, source in FACES:
        if source not in allowed:
            print("%s is not in perception/holdout.txt: refusing to use it" % source,
                  file=sys.stderr)
            return 2
        path = (os.path.join(args.datasets, source) if source.startswith(KAGGLE)
                else os.path.join(folder, source))
        image = cv2.imread(path)
        if image is None:
            print("cannot read %s" % path, file=sys.stderr)
            return 2
        if source.startswith(KAGGLE):
            box = labelled_box(args.datasets, source[len(KAGGLE):], label)
        else:
            found = detector.detect(image)
            if not found:
                print("no face found in %s" % source, file=sys.stderr)
                return 2
            box = found[0].box
        if box is None:
            print("%s has no box labelled %s" % (source, label), file=sys.stderr)
            return 2
        crop = square_face_crop(image, box)
        out = os.path.join(TEXTURES, name + ".jpg")
        cv2.imwrite(out, crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print("%-12s %-9s <- %s (%d bytes)" % (name, label, source, os.path.getsize(out)))
    return 0


def labelled_box(datasets: str, photo: str, label: str):
    """The largest box labelled ``label`` in a Kaggle photo's annotation, or None."""
    from perception.kaggle import load_kaggle

    boxes = [box for entry in load_kaggle(datasets, [photo]) for box, kind in entry.boxes
             if kind == label]
    return max(boxes, key=lambda b: b[3] - b[1]) if boxes else None


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
