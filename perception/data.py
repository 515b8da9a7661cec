"""Training data for the mask classifier: scan the folders, cut faces, cache them, split them.

Why a module of its own: the classifier must see at training time exactly the framing it
sees live, so faces are cut with the project's own FaceDetector and ``crop_face``; doing that
for ~4,000 photos takes minutes, so the crops (with their five landmarks, which mask
synthesis needs) are cached once in an ``.npz`` and every later run starts in a second.

Splits are made by *source*, not by crop: every face of one photo, every ``... copy N`` file
of it, every near-duplicate (perceptual hash) and every photo of one named person (the RMFD
``0_0_<name>_0001`` files) land in the same split, so validation and test never see a face
that training saw. Files listed in ``holdout.txt`` never enter any split.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from perception.classifier import CROP_MARGIN, crop_face
from common.errors import InputError

#: Folder names of mask-classification and the label each one stands for.
CLASS_FOLDERS: Tuple[Tuple[str, str], ...] = (
    ("with_mask", "masked"), ("without_mask", "unmasked"))
#: VOC class names and our labels.
VOC_LABELS: Dict[str, str] = {"with_mask": "masked", "without_mask": "unmasked"}
#: Files set aside for fixtures and simulator textures (paths relative to mask-classification).
HOLDOUT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "holdout.txt")
#: Cached crops carry more context than a live crop so that scale jitter can zoom *out*
#: with real pixels; the live framing (CROP_MARGIN) is the central part of a cached crop.
CACHE_MARGIN = 0.35
CACHE_SIZE = 160
#: Side of the live-framed region inside a cached crop, in cache pixels.
NOMINAL_SIDE = CACHE_SIZE * (1.0 + 2.0 * CROP_MARGIN) / (1.0 + 2.0 * CACHE_MARGIN)
SPLITS = ("train", "val", "test")
DEFAULT_CACHE_DIR = os.path.join(os.path.expanduser("~"), ".cache", "mask_patrol")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
#: Cache format version: bump when the crop geometry or detector settings change.
CACHE_VERSION = 3


@dataclass
class CropSet:
    """Cached face crops of mask-classification with everything training needs.

    ``crops`` is (N, CACHE_SIZE, CACHE_SIZE, 3) uint8 RGB; ``landmarks`` is (N, 5, 2) in crop
    pixels (NaN when the face came without landmarks); ``tight`` marks photos in which MTCNN
    found no face, kept whole as a face crop (see ``cut_faces``); ``files`` are source paths
    relative to the dataset folder, ``source`` indexes into them.
    """

    crops: np.ndarray
    labels: np.ndarray
    landmarks: np.ndarray
    tight: np.ndarray
    source: np.ndarray
    files: List[str]
    split: np.ndarray  # per crop: 0 train, 1 val, 2 test
    #: (N, 4) x1, y1, x2, y2 of the part of each crop that lies inside its photo (the rest
    #: is crop_face's edge padding, which augmentation may refill so it is not learnt).
    valid: np.ndarray

    def indices(self, split: str) -> np.ndarray:
        return np.nonzero(self.split == SPLITS.index(split))[0]

    def has_landmarks(self) -> np.ndarray:
        return ~np.isnan(self.landmarks[:, 0, 0])


def classification_root(data: str) -> str:
    """The mask-classification folder under ``data`` (or ``data`` itself), checked."""
    for candidate in (os.path.join(data, "mask-classification"), data):
        if all(os.path.isdir(os.path.join(candidate, f)) for f, _ in CLASS_FOLDERS):
            return candidate
    raise InputError("%s holds no mask-classification/{with_mask,without_mask} folders; pass "
                     "--data pointing at the datasets folder (e.g. ../shared/datasets)" % data)


def voc_root(data: str) -> str:
    """The mask-detection-voc folder under ``data`` (or ``data`` itself), checked."""
    for candidate in (os.path.join(data, "mask-detection-voc"), data):
        if os.path.isdir(os.path.join(candidate, "annotations")) and \
                os.path.isdir(os.path.join(candidate, "images")):
            return candidate
    raise InputError("%s holds no mask-detection-voc/{images,annotations} folders; pass "
                     "--data pointing at the datasets folder" % data)


def load_holdout(path: str = HOLDOUT_FILE) -> set:
    """Relative paths (``with_mask/x.jpg``) listed in the hold-out file, comments skipped."""
    if not os.path.isfile(path):
        return set()
    with open(path, encoding="utf-8") as handle:
        return {line.strip() for line in handle if line.strip() and not line.startswith("#")}


def scan_classification(root: str, holdout: Optional[set] = None) -> List[Tuple[str, str]]:
    """(relative path, label) of every image, sorted, without the hold-out files."""
    holdout = load_holdout() if holdout is None else holdout
    items = []
    for folder, label in CLASS_FOLDERS:
        for name in sorted(os.listdir(os.path.join(root, folder))):
            rel = folder + "/" + name
            if name.lower().endswith(IMAGE_EXTENSIONS) and rel not in holdout:
                items.append((rel, label))
    if not items:
        raise InputError("no images found under %s/{with_mask,without_mask}" % root)
    return items


_COPY = re.compile(r"( copy( \d+)*)+$")
_PERSON = re.compile(r"^\d+_\d+_([a-z]+)_\d+$")


def group_key(rel_path: str) -> str:
    """The source a file comes from: ``x copy 3.jpg`` and ``x__png.jpg`` group with ``x``,
    and the RMFD files ``0_0_<name>_0001`` group by person."""
    folder, name = rel_path.split("/", 1)
    stem = os.path.splitext(name)[0]
    stem = re.sub(r"__[A-Za-z]+$", "", stem)
    stem = _COPY.sub("", stem)
    person = _PERSON.match(stem)
    if person:
        stem = "person:" + person.group(1)
    return folder + "/" + stem


def perceptual_hash(image_rgb: np.ndarray) -> int:
    """64-bit DCT hash (pHash): near-identical pictures differ in a few bits."""
    import cv2

    gray = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    low = cv2.dct(small)[:8, :8].flatten()
    bits = low > np.median(low[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def _union_groups(keys: Sequence[str], hashes: Sequence[int], max_distance: int) -> List[int]:
    """Group ids merging equal keys and hashes within ``max_distance`` bits (union-find)."""
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first: Dict[str, int] = {}
    for i, key in enumerate(keys):
        if key in first:
            parent[find(i)] = find(first[key])
        else:
            first[key] = i
    bits = np.unpackbits(np.array([[(h >> (8 * b)) & 255 for b in range(8)] for h in hashes],
                                  dtype=np.uint8).reshape(len(keys), 8), axis=1)
    for i in range(len(keys)):
        distance = np.count_nonzero(bits[i + 1:] != bits[i], axis=1)
        for j in np.nonzero(distance <= max_distance)[0]:
            parent[find(i + 1 + int(j))] = find(i)
    return [find(i) for i in range(len(keys))]


def split_sources(labels: Sequence[str], groups: Sequence[int], seed: int = 0,
                  fractions: Tuple[float, float, float] = (0.8, 0.1, 0.1)) -> np.ndarray:
    """Assign whole groups to train/val/test (0/1/2), per class, near the given fractions.

    Groups are visited in a seeded random order and each goes to the split that is furthest
    below its target size, so one big group (a person with 200 photos) cannot skew a split.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or any(f < 0 for f in fractions):
        raise ValueError("fractions must be three non-negative numbers summing to 1, got %r"
                         % (fractions,))
    rng = np.random.RandomState(seed)
    out = np.zeros(len(labels), dtype=np.int64)
    for label in sorted(set(labels)):
        members: Dict[int, List[int]] = {}
        for i, (lab, grp) in enumerate(zip(labels, groups)):
            if lab == label:
                members.setdefault(grp, []).append(i)
        order = sorted(members)
        rng.shuffle(order)
        total = sum(len(v) for v in members.values())
        counts = [0, 0, 0]
        for grp in order:
            deficit = [fractions[s] * total - counts[s] for s in range(3)]
            choice = int(np.argmax(deficit))
            for i in members[grp]:
                out[i] = choice
            counts[choice] += len(members[grp])
    return out


def read_rgb(path: str) -> np.ndarray:
    """Read an image file as RGB uint8, with an InputError naming the file if it won't open."""
    import cv2

    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError("cannot read image %s; is it a valid JPEG/PNG?" % path)
    return image[:, :, ::-1].copy()


def cut_faces(detector, image_rgb: np.ndarray, max_faces: int = 4
              ) -> List[Tuple[np.ndarray, np.ndarray, bool, np.ndarray]]:
    """Cached-size crops of the faces in one photo: (crop, landmarks in crop px, tight,
    valid rectangle in crop px).

    The faces kept are the detector's faces at least 40% as wide as the largest (background
    faces of another size would be mislabelled noise). If MTCNN finds nothing, the photo is
    retried with a grey border (most such photos are tight face crops, and MTCNN needs some
    context around a face); if that fails too the whole photo is kept as one *tight* face,
    because these are mostly masked faces that MTCNN misses and they are the examples the
    classifier needs most.
    """
    import cv2

    faces = detector.detect(image_rgb, color="rgb")
    offset = 0
    if not faces:
        offset = int(round(0.25 * max(image_rgb.shape[:2])))
        padded = cv2.copyMakeBorder(image_rgb, offset, offset, offset, offset,
                                    cv2.BORDER_CONSTANT, value=(128, 128, 128))
        faces = detector.detect(padded, color="rgb")
    out = []
    if faces:
        widest = max(f.width for f in faces)
        for face in faces[:max_faces]:
            if face.width < 0.4 * widest:
                continue
            box = tuple(v - offset for v in face.box)
            crop, scale, origin = _cache_crop(image_rgb, box)
            marks = np.full((5, 2), np.nan, np.float32)
            if face.landmarks:
                marks = ((np.asarray(face.landmarks, np.float32) - offset - origin) * scale
                         ).astype(np.float32)
            out.append((crop, marks, False, _valid_rect(image_rgb, scale, origin)))
    else:
        height, width = image_rgb.shape[:2]
        side = max(height, width) / (1.0 + 2.0 * CROP_MARGIN)
        cx, cy = width / 2.0, height / 2.0
        box = (cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2)
        crop, scale, origin = _cache_crop(image_rgb, box)
        out.append((crop, np.full((5, 2), np.nan, np.float32), True,
                    _valid_rect(image_rgb, scale, origin)))
    return out


def _valid_rect(image_rgb: np.ndarray, scale: float, origin: np.ndarray) -> np.ndarray:
    height, width = image_rgb.shape[:2]
    rect = (np.array([0, 0, width, height], np.float32) - np.tile(origin, 2)) * scale
    return np.clip(rect, 0, CACHE_SIZE).astype(np.float32)


def _cache_crop(image_rgb: np.ndarray, box) -> Tuple[np.ndarray, float, np.ndarray]:
    """crop_face at CACHE_MARGIN resized to CACHE_SIZE; also the scale and top-left used."""
    import cv2

    crop = crop_face(image_rgb, box, margin=CACHE_MARGIN)
    x1, y1, x2, y2 = box
    side = max(max(x2 - x1, y2 - y1) * (1.0 + 2.0 * CACHE_MARGIN), 4.0)
    origin = np.array([int(round((x1 + x2) / 2.0 - side / 2.0)),
                       int(round((y1 + y2) / 2.0 - side / 2.0))], np.float32)
    scale = CACHE_SIZE / float(crop.shape[0])
    interp = cv2.INTER_AREA if crop.shape[0] > CACHE_SIZE else cv2.INTER_LINEAR
    return cv2.resize(crop, (CACHE_SIZE, CACHE_SIZE), interpolation=interp), scale, origin


def cache_path(root: str, cache_dir: str, items: Sequence[Tuple[str, str]], seed: int) -> str:
    """A cache file name that changes when the file list, seed or crop settings change."""
    digest = hashlib.sha1(json.dumps([CACHE_VERSION, CACHE_SIZE, CACHE_MARGIN, seed,
                                      os.path.abspath(root), list(items)]).encode("utf-8"))
    return os.path.join(cache_dir, "crops_%s.npz" % digest.hexdigest()[:12])


def build_crop_set(data: str, cache_dir: str = DEFAULT_CACHE_DIR, seed: int = 0,
                   limit: Optional[int] = None, detector=None, progress: bool = True) -> CropSet:
    """Crops of every (non-hold-out) image, from the cache when it is there.

    ``limit`` keeps only the first N images per class (for quick trials and tests).
    """
    from perception.types import LABELS

    root = classification_root(data)
    items = scan_classification(root)
    if limit is not None:
        kept: Dict[str, int] = {}
        trimmed = []
        for rel, label in items:
            if kept.get(label, 0) < limit:
                trimmed.append((rel, label))
                kept[label] = kept.get(label, 0) + 1
        items = trimmed
    path = cache_path(root, cache_dir, items, seed)
    if os.path.isfile(path):
        return load_crop_set(path)
    if detector is None:
        from perception.detector import FaceDetector
        detector = FaceDetector(min_face_size=20)
    crops, labels, marks, tight, source, hashes, valid = [], [], [], [], [], [], []
    iterator = items
    if progress:
        from tqdm import tqdm
        iterator = tqdm(items, desc="cutting faces", unit="img")
    for index, (rel, label) in enumerate(iterator):
        try:
            image = read_rgb(os.path.join(root, rel))
        except InputError:
            hashes.append(0)
            continue
        hashes.append(perceptual_hash(image))
        for crop, landmarks, is_tight, rect in cut_faces(detector, image):
            valid.append(rect)
            crops.append(crop)
            labels.append(LABELS.index(label))
            marks.append(landmarks)
            tight.append(is_tight)
            source.append(index)
    groups = _union_groups([group_key(rel) for rel, _ in items], hashes, max_distance=2)
    source_split = split_sources([label for _, label in items], groups, seed=seed)
    crop_set = CropSet(crops=np.stack(crops), labels=np.asarray(labels, np.int64),
                       landmarks=np.stack(marks), tight=np.asarray(tight, bool),
                       source=np.asarray(source, np.int64), files=[rel for rel, _ in items],
                       split=source_split[np.asarray(source, np.int64)],
                       valid=np.stack(valid))
    save_crop_set(crop_set, path)
    return crop_set


def save_crop_set(crop_set: CropSet, path: str) -> None:
    """Write a crop cache atomically (a run cut short leaves no half file)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, crops=crop_set.crops, labels=crop_set.labels,
                        landmarks=crop_set.landmarks, tight=crop_set.tight,
                        source=crop_set.source, files=np.asarray(crop_set.files),
                        split=crop_set.split, valid=crop_set.valid)
    os.replace(tmp, path)


def concat_crop_sets(first: CropSet, second: CropSet) -> CropSet:
    """One crop set holding both (sources renumbered), e.g. portraits plus Kaggle crowds."""
    return CropSet(crops=np.concatenate([first.crops, second.crops]),
                   labels=np.concatenate([first.labels, second.labels]),
                   landmarks=np.concatenate([first.landmarks, second.landmarks]),
                   tight=np.concatenate([first.tight, second.tight]),
                   source=np.concatenate([first.source, second.source + len(first.files)]),
                   files=list(first.files) + list(second.files),
                   split=np.concatenate([first.split, second.split]),
                   valid=np.concatenate([first.valid, second.valid]))


def load_crop_set(path: str) -> CropSet:
    """Read a crop cache written by build_crop_set."""
    with np.load(path, allow_pickle=False) as data:
        return CropSet(crops=data["crops"], labels=data["labels"], landmarks=data["landmarks"],
                       tight=data["tight"], source=data["source"],
                       files=[str(f) for f in data["files"]], split=data["split"],
                       valid=data["valid"])


@dataclass(frozen=True)
class VocImage:
    """One image of mask-detection-voc with its labelled boxes."""

    path: str
    boxes: Tuple[Tuple[Tuple[float, float, float, float], str], ...]


def read_voc_annotation(root: str, name: str, labels: Dict[str, str],
                        strict: bool = False) -> VocImage:
    """``root/annotations/name`` (PASCAL VOC XML) with its boxes' class names mapped by
    ``labels``; a class not in ``labels`` is skipped, or with ``strict`` an InputError."""
    tree = ET.parse(os.path.join(root, "annotations", name))
    filename = tree.findtext("filename") or name[:-4] + ".jpg"
    boxes = []
    for obj in tree.findall("object"):
        label = labels.get((obj.findtext("name") or "").strip())
        if label is None:
            if strict:
                raise InputError("%s: unknown class %r; expected one of %s"
                                 % (name, obj.findtext("name"), ", ".join(labels)))
            continue
        bb = obj.find("bndbox")
        box = tuple(float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        boxes.append((box, label))
    return VocImage(path=os.path.join(root, "images", filename), boxes=tuple(boxes))


def load_voc(data: str) -> List[VocImage]:
    """Every annotated image of mask-detection-voc with boxes mapped to our labels."""
    root = voc_root(data)
    out = [read_voc_annotation(root, name, VOC_LABELS)
           for name in sorted(os.listdir(os.path.join(root, "annotations")))
           if name.endswith(".xml")]
    if not out:
        raise InputError("no VOC annotations found in %s/annotations" % root)
    return out
