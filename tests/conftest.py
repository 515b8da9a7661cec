"""Shared test helpers: real images, the real detector and classifier, moving-face frames.

Models are built once per session (MTCNN and the MobileNetV2 take seconds to load). The
developer data sets are only used by tests marked ``dataset``; they read the folder from
MASK_PATROL_DATASETS so the default suite passes on a fresh clone without ../shared.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
from typing import List, Tuple

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def datasets_dir() -> str:
    return os.environ.get("MASK_PATROL_DATASETS", "/work/shared/datasets")


def fixture_paths(folder: str) -> List[str]:
    """Fixture photos of one class folder ('with_mask' or 'without_mask'), sorted."""
    paths = sorted(glob.glob(os.path.join(FIXTURES, folder, "*.jpg")))
    assert paths, "no fixture photos in %s" % folder
    return paths


def portrait_dataset(root) -> None:
    """A mask-classification folder under ``root`` made of the committed fixture photos,
    renamed because holdout.txt (rightly) keeps their real names out of training."""
    import shutil

    for folder in ("with_mask", "without_mask"):
        target = os.path.join(str(root), "mask-classification", folder)
        os.makedirs(target)
        for path in fixture_paths(folder):
            shutil.copy(path, os.path.join(target, "t_" + os.path.basename(path)))


def read_bgr(path: str) -> np.ndarray:
    import cv2

    image = cv2.imread(path, cv2.IMREAD_COLOR)
    assert image is not None, path
    return image


def astronaut_bgr() -> np.ndarray:
    """scikit-image's astronaut photo (one real, frontal face), as BGR."""
    from skimage import data

    return np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def wall(width: int = 640, height: int = 480) -> np.ndarray:
    """A textured grey background (a brick wall from scikit-image)."""
    import cv2
    from skimage import data

    gray = cv2.resize(data.brick(), (width, height), interpolation=cv2.INTER_LINEAR)
    return cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)


def head_patch(path: str, side: int) -> np.ndarray:
    """The middle of a fixture photo (where its face is), resized to side x side."""
    import cv2

    image = read_bgr(path)
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return cv2.resize(image[top:top + s, left:left + s], (side, side),
                      interpolation=cv2.INTER_AREA)


def paste(frame: np.ndarray, patch: np.ndarray, x: int, y: int) -> Tuple[int, int, int, int]:
    """Paste ``patch`` with its top-left at (x, y), clipped; returns the pasted box."""
    h, w = patch.shape[:2]
    fh, fw = frame.shape[:2]
    x1, y1, x2, y2 = max(0, x), max(0, y), min(fw, x + w), min(fh, y + h)
    if x2 > x1 and y2 > y1:
        frame[y1:y2, x1:x2] = patch[y1 - y:y2 - y, x1 - x:x2 - x]
    return (x, y, x + w, y + h)


def moving_frames(paths: List[str], starts: List[Tuple[int, int]], step: Tuple[int, int],
                  count: int, side: int = 150, size: Tuple[int, int] = (640, 480)):
    """``count`` frames of fixture heads moving by ``step`` px per frame over a wall.

    Returns (frames, boxes) where boxes[i][k] is where head k was pasted in frame i.
    """
    patches = [head_patch(p, side) for p in paths]
    background = wall(*size)
    frames, boxes = [], []
    for i in range(count):
        frame = background.copy()
        frame_boxes = []
        for patch, (x, y) in zip(patches, starts):
            frame_boxes.append(paste(frame, patch, x + step[0] * i, y + step[1] * i))
        frames.append(frame)
        boxes.append(frame_boxes)
    return frames, boxes


def box_iou(a, b) -> float:
    from perception.tracker import iou

    return iou(a, b)


def contains(outer, inner) -> bool:
    """True when box ``inner`` lies inside box ``outer``."""
    return (outer[0] <= inner[0] and outer[1] <= inner[1]
            and inner[2] <= outer[2] and inner[3] <= outer[3])


def run_module(module: str, *args: str, cwd: str = ROOT, timeout: float = 120.0):
    """Run ``python -m module args`` like a user would; returns the CompletedProcess."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return subprocess.run([sys.executable, "-m", module] + list(args), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="session")
def detector():
    from perception.detector import FaceDetector

    return FaceDetector()


@pytest.fixture(scope="session")
def classifier():
    from perception.classifier import MaskClassifier

    return MaskClassifier()
