"""The Kaggle crowd photos (``mask-detection-kaggle``): their boxes and one fixed test split.

Why a split of our own: these 853 photos (CC0) are the only real crowds, small faces and
masks below the nose we have, so they serve for training and for testing. The test split is
drawn once BY IMAGE (every face of a photo on the same side) with a fixed seed, and written
to ``kaggle_test_split.txt`` beside this file, so that training can leave exactly those
photos out and every evaluation reads the same list.

Photos that also occur in ``mask-classification/`` (the classifier's training source) are
never in the test split. They are found with the DCT perceptual hash that the training data
already uses (``perception.data.perceptual_hash``), of each photo and of its mirror image,
within ``OVERLAP_BITS`` bits; the file lists them (as comments) with their twin.

    python -m perception.kaggle --data ../shared/datasets     # rewrites the split file
"""
from __future__ import annotations

import argparse
import os
import sys
import xml.etree.ElementTree as ET
from typing import Dict, List, Optional, Sequence

import numpy as np

from perception.data import VocImage
from perception.errors import InputError

#: The Kaggle set's class names and our labels.
KAGGLE_LABELS: Dict[str, str] = {"with_mask": "masked", "without_mask": "unmasked",
                                 "mask_weared_incorrect": "incorrect"}
TEST_SPLIT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                               "kaggle_test_split.txt")
TEST_FRACTION = 0.2
SPLIT_SEED = 0
#: Hash distance for "the same photo": pHash bits of resized or re-encoded copies differ by a
#: few; unrelated photos in these sets are 10 or more apart (measured: see the split file).
OVERLAP_BITS = 8


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
        tree = ET.parse(os.path.join(root, "annotations", name))
        filename = tree.findtext("filename") or name[:-4] + ".jpg"
        if wanted is not None and filename not in wanted:
            continue
        boxes = []
        for obj in tree.findall("object"):
            label = KAGGLE_LABELS.get((obj.findtext("name") or "").strip())
            if label is None:
                raise InputError("%s: unknown class %r; expected one of %s"
                                 % (name, obj.findtext("name"), ", ".join(KAGGLE_LABELS)))
            bb = obj.find("bndbox")
            boxes.append((tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax")),
                          label))
        out.append(VocImage(path=os.path.join(root, "images", filename), boxes=tuple(boxes)))
    if wanted is not None and len(out) != len(wanted):
        missing = sorted(wanted - {os.path.basename(e.path) for e in out})
        raise InputError("%d photos of the split are not in %s, e.g. %s"
                         % (len(missing), root, missing[:3]))
    return out


def hash_distances(hashes_a: Sequence[int], hashes_b: Sequence[int]) -> np.ndarray:
    """Hamming distances (len(a) x len(b)) between 64-bit hashes."""
    def bits(hashes):
        raw = np.array([[(int(h) >> (8 * k)) & 255 for k in range(8)] for h in hashes],
                       dtype=np.uint8).reshape(-1, 8)
        return np.unpackbits(raw, axis=1).astype(bool)

    a, b = bits(hashes_a), bits(hashes_b)
    return (a[:, None, :] != b[None, :, :]).sum(axis=2)


def find_overlaps(paths: Sequence[str], others: Sequence[str],
                  max_bits: int = OVERLAP_BITS) -> Dict[str, str]:
    """{path: the path in ``others`` that shows the same photo} by pHash, mirror included."""
    from perception.data import perceptual_hash, read_rgb

    if not paths or not others:
        return {}
    own, mirrored = [], []
    for path in paths:
        image = read_rgb(path)
        own.append(perceptual_hash(image))
        mirrored.append(perceptual_hash(np.ascontiguousarray(image[:, ::-1])))
    theirs = [perceptual_hash(read_rgb(path)) for path in others]
    distance = np.minimum(hash_distances(own, theirs), hash_distances(mirrored, theirs))
    return {paths[i]: others[int(np.argmin(distance[i]))]
            for i in np.nonzero(distance.min(axis=1) <= max_bits)[0]}


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
    from perception.data import IMAGE_EXTENSIONS, classification_root

    root = kaggle_root(data)
    entries = load_kaggle(data)
    paths = [e.path for e in entries]
    classification = classification_root(data)
    others = sorted(os.path.join(dirpath, name)
                    for dirpath, _, files in os.walk(classification) for name in files
                    if name.lower().endswith(IMAGE_EXTENSIONS))
    overlaps = find_overlaps(paths, others)
    names = [os.path.basename(p) for p in paths]
    split = choose_test_split(names, [os.path.basename(p) for p in overlaps])
    faces = sum(len(e.boxes) for e in entries if os.path.basename(e.path) in set(split))
    lines = ["# Test split of mask-detection-kaggle: never train or tune on these photos.",
             "# Made by `python -m perception.kaggle --data DATASETS` (perception/kaggle.py):",
             "# %d photos, %d faces: a fraction %.2f of the %d photos drawn with seed %d, less"
             % (len(split), faces, TEST_FRACTION, len(names), SPLIT_SEED),
             "# those within %d bits of pHash (or its mirror's) of a mask-classification/ photo"
             % OVERLAP_BITS,
             "# (%d, with their twin):" % len(overlaps)]
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
