"""Training face crops of the Kaggle crowd photos (``mask-detection-kaggle``).

Why: these are the only real crowds we have: small, turned and dim faces, and the only real
masks worn below the nose (``incorrect``). The classifier learns from them beside
mask-classification's portraits (``perception.train --kaggle``).

What is left out: the fixed test split (``perception/kaggle_test_split.txt``) and the photos
set aside for the simulator's faces (``perception/holdout.txt``), so neither is ever trained
or tuned on. The remaining photos are split BY PHOTO into training and validation.

How a face is framed: each labelled box is matched (IoU >= ``MATCH_IOU``) with a face the
detector finds, and cut around the detector's box, because that is the framing the live
pipeline gives the classifier; the detector's five landmarks let ``perception.synth`` draw
masks onto unmasked Kaggle faces as well. A labelled face the detector misses is cut around
its hand-drawn box, without landmarks. Faces under ``MIN_HEIGHT`` px are skipped: there is
nothing to learn in a 6 px face, and the robot never alerts under 12 px.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import List, Optional, Set

import numpy as np

from perception.data import (CACHE_MARGIN, CACHE_SIZE, DEFAULT_CACHE_DIR, SPLITS, CropSet,
                             _cache_crop, _valid_rect, load_crop_set, load_holdout,
                             read_rgb, save_crop_set)
from perception.tracker import iou
from perception.kaggle import kaggle_root, load_kaggle, load_test_split
from perception.types import LABELS

#: Prefix of hold-out lines that name Kaggle photos (the others name mask-classification's).
HOLDOUT_PREFIX = "mask-detection-kaggle/images/"
MATCH_IOU = 0.4
MIN_HEIGHT = 10
VAL_FRACTION = 0.15
#: Landmarks are kept only when the eyes are at least this fraction of the face's width
#: apart in the crop: on a head turned away a mask warped from them would not fit.
MIN_EYE_FRACTION = 0.2
#: Bump when the framing, the detector or the split rule changes.
CACHE_VERSION = 1


def held_out_photos(holdout: Optional[Set[str]] = None) -> Set[str]:
    """File names of the Kaggle photos listed in holdout.txt."""
    holdout = load_holdout() if holdout is None else holdout
    return {line[len(HOLDOUT_PREFIX):] for line in holdout if line.startswith(HOLDOUT_PREFIX)}


def training_photos(data: str) -> List:
    """The Kaggle photos that may be trained on: not in the test split, not held out."""
    excluded = set(load_test_split()) | held_out_photos()
    return [e for e in load_kaggle(data) if os.path.basename(e.path) not in excluded]


def build_kaggle_crop_set(data: str, cache_dir: str = DEFAULT_CACHE_DIR, seed: int = 0,
                          detector=None, progress: bool = True) -> CropSet:
    """Crops of every usable labelled face, split by photo (``SPLITS``: train and val only);
    cached in ``cache_dir``."""
    entries = training_photos(data)
    names = [os.path.basename(e.path) for e in entries]
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, CACHE_SIZE, CACHE_MARGIN, MATCH_IOU,
                                      MIN_HEIGHT, VAL_FRACTION, seed,
                                      os.path.abspath(kaggle_root(data)), names]
                                     ).encode("utf-8")).hexdigest()[:12]
    path = os.path.join(cache_dir, "kaggle_crops_%s.npz" % digest)
    if os.path.isfile(path):
        return frontal_landmarks_only(load_crop_set(path))
    if detector is None:
        from perception.detector import FaceDetector
        detector = FaceDetector(backend="centerface", upscale=2.0)
    order = np.random.RandomState(seed).permutation(len(entries))
    val_photos = set(order[:int(round(VAL_FRACTION * len(entries)))].tolist())
    crops, labels, marks, source, valid, split = [], [], [], [], [], []
    iterator = enumerate(entries)
    if progress:
        from tqdm import tqdm
        iterator = tqdm(iterator, total=len(entries), desc="cutting Kaggle faces", unit="img")
    for index, entry in iterator:
        image = read_rgb(entry.path)
        faces = detector.detect(image, color="rgb")
        taken: Set[int] = set()
        for box, label in entry.boxes:
            if box[3] - box[1] < MIN_HEIGHT:
                continue
            scores = [iou(box, f.box) if i not in taken else 0.0 for i, f in enumerate(faces)]
            best = int(np.argmax(scores)) if scores else -1
            landmarks = np.full((5, 2), np.nan, np.float32)
            cut = box
            if best >= 0 and scores[best] >= MATCH_IOU:
                taken.add(best)
                cut = faces[best].box
            crop, scale, origin = _cache_crop(image, cut)
            if cut is not box and faces[best].landmarks:
                landmarks = ((np.asarray(faces[best].landmarks, np.float32) - origin) * scale
                             ).astype(np.float32)
            crops.append(crop)
            labels.append(LABELS.index(label))
            marks.append(landmarks)
            source.append(index)
            valid.append(_valid_rect(image, scale, origin))
            split.append(SPLITS.index("val" if index in val_photos else "train"))
    crop_set = CropSet(crops=np.stack(crops), labels=np.asarray(labels, np.int64),
                       landmarks=np.stack(marks), tight=np.zeros(len(crops), bool),
                       source=np.asarray(source, np.int64),
                       files=[HOLDOUT_PREFIX + n for n in names],
                       split=np.asarray(split, np.int64), valid=np.stack(valid))
    save_crop_set(crop_set, path)
    return frontal_landmarks_only(crop_set)


def frontal_landmarks_only(crop_set: CropSet) -> CropSet:
    """Forget the landmarks of faces turned too far for a mask to be drawn on them."""
    face_width = CACHE_SIZE / (1.0 + 2.0 * CACHE_MARGIN)
    eyes = np.linalg.norm(crop_set.landmarks[:, 1] - crop_set.landmarks[:, 0], axis=1)
    turned = ~(eyes >= MIN_EYE_FRACTION * face_width)  # NaN (no landmarks) stays as it is
    crop_set.landmarks[turned] = np.nan
    return crop_set
