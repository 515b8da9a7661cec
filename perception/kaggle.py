"""The Kaggle crowd photos (``mask-detection-kaggle``): their boxes and one fixed test split.

Why a split of our own: these 853 photos (CC0) are the only real crowds, small faces and
masks below the nose we have, so they serve for training and for testing. The test split is
drawn once BY IMAGE (every face of a photo on the same side) with a fixed seed, and written
to ``kaggle_test_split.txt`` beside this file, so that training can leave exactly those
photos out and every evaluation reads the same list.

Photos that also occur in ``mask-classification/`` (the classifier's training source) are
never in the test split. A perceptual hash of whole photos finds none of them: they occur
there cropped, or in a collage. So they are found by local features (``find_overlaps``):
ORB keypoints of both photos, matched and checked by RANSAC for one similarity transform
with at least ``MIN_INLIERS`` inliers (unrelated photos reach 0-3). Only the photos of
mask-classification at least ``MIN_SIDE`` px on their longest side are searched: smaller
ones are single-face crops, not scenes. The split file lists each photo found with its twin.

    python -m perception.kaggle --data ../shared/datasets     # rewrites the split file
"""
from __future__ import annotations

import argparse
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np

from perception.data import VocImage, read_voc_annotation
from common.errors import InputError

#: The Kaggle set's class names and our labels.
KAGGLE_LABELS: Dict[str, str] = {"with_mask": "masked", "without_mask": "unmasked",
                                 "mask_weared_incorrect": "incorrect"}
TEST_SPLIT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "kaggle_test_split.txt")
TEST_FRACTION = 0.2
SPLIT_SEED = 0
#: RANSAC inliers that make two photos one scene: the overlaps found had 11-42, unrelated
#: pairs 0-3 (see the split file).
MIN_INLIERS = 10
#: Photos of mask-classification smaller than this (longest side, px) are not searched.
MIN_SIDE = 250
#: ORB keypoints per searched photo and per photo searched for, each photo shrunk to
#: ``_FEATURE_SIDE`` px on its longest side.
_KEYPOINTS = 150
_QUERY_KEYPOINTS = 300
_FEATURE_SIDE = 320


def kaggle_root(data: str) -> str:
    """The mask-detection-kaggle folder under ``data`` (or ``data`` itself), checked."""
    for candidate in (os.path.join(data, "mask-detection-kaggle"), data):
        if os.path.isdir(os.path.join(candidate, "annotations")) and \
                os.path.isdir(os.path.join(candidate, "images")) and \
                any(n.startswith("maksssksksss") for n in os.listdir(
                    os.path.join(candidate, "images"))):
            return candidate
    raise InputError("%s holds no mask-detection-kaggle/{images,annotations} folders; pass "
                     "--data pointing at the datasets folder (e.g. ../shared/datasets)" % data)


def load_kaggle(data: str, names: Optional[Sequence[str]] = None) -> List[VocImage]:
    """Every annotated photo (or those whose image file name is in ``names``), with boxes
    mapped to our three labels."""
    root = kaggle_root(data)
    wanted = None if names is None else set(names)
    out = []
    for name in sorted(os.listdir(os.path.join(root, "annotations"))):
        if not name.endswith(".xml"):
            continue
        image = read_voc_annotation(root, name, KAGGLE_LABELS, strict=True)
        if wanted is None or os.path.basename(image.path) in wanted:
            out.append(image)
    if wanted is not None and len(out) != len(wanted):
        missing = sorted(wanted - {os.path.basename(e.path) for e in out})
        raise InputError("%d photos of the split are not in %s, e.g. %s"
                         % (len(missing), root, missing[:3]))
    return out


def _features(path: str, keypoints: int = _KEYPOINTS):
    """ORB keypoint positions and descriptors of one photo, on a copy ~320 px wide."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    gray = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if gray is None:
        raise InputError("cannot read image %s; is it a valid JPEG/PNG?" % path)
    factor = _FEATURE_SIDE / float(max(gray.shape))
    gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
    points, descriptors = cv2.ORB_create(nfeatures=keypoints).detectAndCompute(gray, None)
    if descriptors is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8)
    return np.float32([p.pt for p in points]).reshape(-1, 2), descriptors


def find_overlaps(paths: Sequence[str], others: Sequence[str],
                  min_inliers: int = MIN_INLIERS) -> Dict[str, str]:
    """{path: the photo in ``others`` that shows the same scene}, by ORB + RANSAC.

    Each photo's keypoints are matched (Lowe's ratio test) against all of ``others`` at
    once; the three photos with most matches are checked for one similarity transform.
    Costs about 0.3 s a photo against 1,200 others on one core.
    """
    import cv2

    theirs = [_features(path) for path in others]
    if not paths or not any(len(d) for _, d in theirs):
        return {}
    points = np.vstack([p for p, _ in theirs])
    owner = np.concatenate([np.full(len(d), i) for i, (_, d) in enumerate(theirs)])
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    chunk = 200000  # OpenCV's brute-force matcher takes at most 2**18 rows a train set
    descriptors = np.vstack([d for _, d in theirs])
    matcher.add([descriptors[i:i + chunk] for i in range(0, len(descriptors), chunk)])
    out = {}
    for path in paths:
        mine, query = _features(path, _QUERY_KEYPOINTS)
        if len(query) < 2:
            continue
        good = [(a.queryIdx, a.imgIdx * chunk + a.trainIdx)
                for a, b in (m for m in matcher.knnMatch(query, k=2) if len(m) == 2)
                if a.distance < 0.8 * b.distance]
        votes = np.bincount([owner[t] for _, t in good], minlength=len(others))
        best, best_inliers = -1, min_inliers - 1
        for other in np.argsort(-votes)[:3]:
            pairs = [(q, t) for q, t in good if owner[t] == other]
            if len(pairs) < min_inliers:
                continue
            _, inliers = cv2.estimateAffinePartial2D(
                mine[[q for q, _ in pairs]], points[[t for _, t in pairs]],
                method=cv2.RANSAC, ransacReprojThreshold=4.0)
            count = int(inliers.sum()) if inliers is not None else 0
            if count > best_inliers:
                best, best_inliers = int(other), count
        if best >= 0:
            out[path] = others[best]
    return out


def choose_test_split(names: Sequence[str], exclude: Sequence[str] = (),
                      fraction: float = TEST_FRACTION, seed: int = SPLIT_SEED) -> List[str]:
    """``fraction`` of ``names`` drawn with ``seed``, less those in ``exclude``; sorted.

    The draw depends only on the sorted names, so the same folder gives the same split, and
    excluding one more photo takes only that photo out of it.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError("fraction must be in (0, 1), got %r" % (fraction,))
    names = sorted(set(names))
    order = np.random.RandomState(seed).permutation(len(names))
    left_out = set(exclude)
    return sorted(names[i] for i in order[:int(round(fraction * len(names)))]
                  if names[i] not in left_out)


def load_test_split(path: str = TEST_SPLIT_FILE) -> List[str]:
    """Image file names of the test split (comment lines skipped)."""
    if not os.path.isfile(path):
        raise InputError("no Kaggle test split at %s; make it with python -m perception.kaggle "
                         "--data ../shared/datasets" % path)
    with open(path, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    if not names:
        raise InputError("the Kaggle test split %s lists no photos" % path)
    return names


def write_test_split(data: str, path: str = TEST_SPLIT_FILE) -> List[str]:
    """Find the overlap with mask-classification, draw the split, write it; returns it."""
    from PIL import Image

    from perception.data import IMAGE_EXTENSIONS, classification_root

    root = kaggle_root(data)
    entries = load_kaggle(data)
    paths = [e.path for e in entries]
    classification = classification_root(data)
    others = []
    for dirpath, _, files in sorted(os.walk(classification)):
        for name in sorted(files):
            photo = os.path.join(dirpath, name)
            if name.lower().endswith(IMAGE_EXTENSIONS):
                with Image.open(photo) as image:
                    if max(image.size) >= MIN_SIDE:
                        others.append(photo)
    overlaps = find_overlaps(paths, others)
    names = [os.path.basename(p) for p in paths]
    split = choose_test_split(names, [os.path.basename(p) for p in overlaps])
    faces = sum(len(e.boxes) for e in entries if os.path.basename(e.path) in set(split))
    lines = ["# Test split of mask-detection-kaggle: never train or tune on these photos.",
             "# Made by `python -m perception.kaggle --data DATASETS` (perception/kaggle.py):",
             "# %d photos, %d faces: a fraction %.2f of the %d photos drawn with seed %d, less"
             % (len(split), faces, TEST_FRACTION, len(names), SPLIT_SEED),
             "# those that show the same scene as a mask-classification/ photo (ORB + RANSAC,",
             "# >= %d inliers; %d photos of it >= %d px searched). Left out (%d), with their twin:"
             % (MIN_INLIERS, len(others), MIN_SIDE, len(overlaps))]
    lines += ["#   %s = %s" % (os.path.basename(p), os.path.relpath(o, classification))
              for p, o in sorted(overlaps.items())]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines + split) + "\n")
    print("%s: %d test photos (%d faces), %d overlapping photos left out; from %s"
          % (path, len(split), faces, len(overlaps), root))
    return split


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perception.kaggle",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="datasets folder (../shared/datasets)")
    parser.add_argument("--out", default=TEST_SPLIT_FILE, help="default: %(default)s")
    args = parser.parse_args(argv)
    try:
        write_test_split(args.data, args.out)
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
