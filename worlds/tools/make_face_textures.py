"""Make the actors' face textures from held-out photos (run once; the outputs are committed).

Why a tool: the textures are data the worlds depend on, and a reader must be able to see
exactly which photo each came from and redo them. Every source photo is listed in
``perception/holdout.txt`` (set aside from the classifier's training and validation), so a
camera in the simulator never shows the classifier a face it was trained on.

Each photo is cropped to a square around the face that MTCNN finds (the face box fills
about 70 % of the height, like a head seen from the front), resized to 256 px and written as
JPEG into ``worlds/models/mask_patrol_faces/materials/textures/<label>_<n>.jpg``. The
"incorrect" faces (mask worn below the nose) are made from unmasked photos with
``perception.synth`` when that module exists; the tool says so when it does not.

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
    try:
        from perception import synth  # written by the perception engineer
    except ImportError:
        synth = None
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
            if synth is not None and hasattr(synth, "put_mask"):
                image = synth_mask_below_nose(synth, image, faces[0])
            else:
                print("%s: perception.synth is not there yet, drawing the mask here"
                      % name, file=sys.stderr)
                image = draw_mask_below_nose(image, faces[0])
        crop = square_face_crop(image, faces[0].box)
        out = os.path.join(TEXTURES, name + ".jpg")
        cv2.imwrite(out, crop, [cv2.IMWRITE_JPEG_QUALITY, 90])
        print("%-12s %-9s <- %s (%d bytes)" % (name, label, source, os.path.getsize(out)))
    return 0


def draw_mask_below_nose(image_bgr: np.ndarray, face) -> np.ndarray:
    """A light-blue surgical mask from just under the nose tip to below the chin.

    Fallback for when perception.synth is missing: the mask is a polygon placed and rotated
    from MTCNN's five landmarks (eye line for roll, nose and mouth for height), with pleats
    and ear loops, so the nose stays uncovered as in a mask worn below the nose.
    """
    import cv2

    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face.landmarks
    roll = np.arctan2(rey - ley, rex - lex)
    ux = np.array([np.cos(roll), np.sin(roll)])   # along the eye line
    uy = np.array([-np.sin(roll), np.cos(roll)])  # down the face
    eye_span = float(np.hypot(rex - lex, rey - ley))
    mouth = np.array([(lmx + rmx) / 2.0, (lmy + rmy) / 2.0])
    nose = np.array([nx, ny])
    drop = float(np.dot(mouth - nose, uy))
    centre = nose + uy * (0.25 * drop) + ux * float(np.dot(mouth - nose, ux))
    top, bottom = 0.0, 2.3 * drop
    half_top, half_bottom = 0.95 * eye_span, 0.75 * eye_span
    outline = [centre + ux * (-half_top) + uy * top, centre + ux * half_top + uy * top]
    for a in np.linspace(0.0, np.pi, 12):  # rounded bottom edge under the chin
        outline.append(centre + ux * (half_bottom * np.cos(a)) + uy * (0.55 * bottom + 0.45 * bottom * np.sin(a)))
    outline.append(centre + ux * (-half_top) + uy * top)
    poly = np.round(np.array(outline)).astype(np.int32)
    out = image_bgr.copy()
    cv2.fillPoly(out, [poly], (235, 205, 160), lineType=cv2.LINE_AA)
    for k in (0.3, 0.55, 0.8):  # pleats
        a = centre + ux * (-0.9 * half_top) + uy * (k * bottom)
        b = centre + ux * (0.9 * half_top) + uy * (k * bottom)
        cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), (200, 170, 130), 2, cv2.LINE_AA)
    cv2.polylines(out, [poly], True, (190, 160, 120), 2, cv2.LINE_AA)
    for side in (-1, 1):  # ear loops towards the ears
        a = centre + ux * (side * half_top) + uy * (0.1 * bottom)
        b = centre + ux * (side * 1.25 * eye_span) - uy * (0.4 * drop)
        cv2.line(out, tuple(int(v) for v in a), tuple(int(v) for v in b), (240, 240, 240), 2, cv2.LINE_AA)
    return out


def synth_mask_below_nose(synth, image_bgr: np.ndarray, face) -> np.ndarray:
    """Put a mask below the nose with perception.synth (its API: see that module)."""
    rgb = image_bgr[:, :, ::-1].copy()
    out = synth.put_mask(rgb, face.landmarks, style="below_nose")
    return np.ascontiguousarray(np.asarray(out)[:, :, ::-1])


if __name__ == "__main__":
    sys.path.insert(0, ROOT)
    sys.exit(main())
