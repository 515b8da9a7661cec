"""Training-time augmentation of cached face crops (numpy + OpenCV, no torch).

Why these: the classifier must work on faces from other cameras than the web photos it is
trained on — other framing (detector boxes vs hand-drawn boxes), resolution (a 60 px face in
a patrol frame), colour and JPEG quality. Each transform stands for one of those shifts;
``view`` cuts the live framing from a cached crop so that validation and training agree with
``classifier.crop_face`` at run time.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from perception.data import CACHE_SIZE, NOMINAL_SIDE

#: The narrowest a squeezed training view makes a face, as a share of its width (the
#: widest: 1 / 1.7). 0.85 covers hand-drawn boxes; a head turned away, or a simulator face
#: plate seen from 45 degrees, is narrowed to about 0.55-0.7 (``train --narrowest``; the
#: model card measures what that costs).
NARROWEST = 0.85


def view(crop: np.ndarray, size: Optional[int] = None) -> np.ndarray:
    """The live framing (crop_face at CROP_MARGIN) of a cached crop, resized to ``size``
    (left at cache resolution when ``size`` is None, e.g. for MaskClassifier to resize)."""
    import cv2

    low = int(round((CACHE_SIZE - NOMINAL_SIDE) / 2.0))
    high = int(round((CACHE_SIZE + NOMINAL_SIDE) / 2.0))
    centre = crop[low:high, low:high]
    if size is None:
        return np.ascontiguousarray(centre)
    return cv2.resize(centre, (size, size), interpolation=cv2.INTER_AREA)


def refill_padding(crop: np.ndarray, valid: np.ndarray, rng: np.random.RandomState
                   ) -> np.ndarray:
    """Replace the edge-padded border of a crop with something else (a flat colour, noise,
    a blurred copy), so the network cannot learn that streaky borders mean anything."""
    import cv2

    x1, y1, x2, y2 = [int(round(v)) for v in valid]
    if x1 <= 0 and y1 <= 0 and x2 >= crop.shape[1] and y2 >= crop.shape[0]:
        return crop
    choice = rng.randint(3)
    if choice == 0:
        fill = np.empty_like(crop)
        fill[:] = rng.randint(0, 256, 3).astype(np.uint8)
    elif choice == 1:
        noise = rng.randint(0, 256, (crop.shape[0] // 8 + 1, crop.shape[1] // 8 + 1, 3))
        fill = cv2.resize(noise.astype(np.uint8), (crop.shape[1], crop.shape[0]),
                          interpolation=cv2.INTER_CUBIC)
    else:
        fill = cv2.GaussianBlur(crop, (0, 0), 8)
    out = fill.copy()
    out[max(0, y1):y2, max(0, x1):x2] = crop[max(0, y1):y2, max(0, x1):x2]
    return out


def cut_at_frame_edge(image: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """Imitate a face cut off by the frame border: beyond a random line on one side the
    edge pixels repeat, exactly as crop_face pads a face that leaves the picture."""
    size = image.shape[0]
    cut = int(size * rng.uniform(0.1, 0.35))
    out = np.array(image)
    side = rng.randint(4)
    if side == 0:
        out[:, :cut] = out[:, cut:cut + 1]
    elif side == 1:
        out[:, size - cut:] = out[:, size - cut - 1:size - cut]
    elif side == 2:
        out[:cut] = out[cut:cut + 1]
    else:
        out[size - cut:] = out[size - cut - 1:size - cut]
    return out


def augment(crop: np.ndarray, size: int, rng: np.random.RandomState,
            valid: Optional[np.ndarray] = None, zoom_out: bool = True,
            narrowest: float = NARROWEST) -> np.ndarray:
    """A randomly changed ``size`` x ``size`` view of a cached crop.

    Scale jitter zooms out (up to 1.3x, real context from the cache) and in (0.7x, about the
    bare face box), and 40% of views are squeezed as a non-square box resized to a square is;
    ``zoom_out`` False limits it to zooming in, for photos that were tight crops with no
    context to show.
    """
    import cv2

    if valid is not None and rng.rand() < 0.5:
        crop = refill_padding(crop, valid, rng)
    # From about the bare box (0.7 x the live framing) to 1.3 x: crops cut by another tool
    # are often tight, and tight framing must not read as "masked" (most photos that were
    # whole-face crops in the training data are masked ones).
    scale = rng.uniform(0.7, 1.3 if zoom_out else 1.0)
    side = NOMINAL_SIDE * scale
    # Hand-drawn boxes are rarely square (mask-detection-voc: height/width 0.85-2.4), and a
    # box crop is squeezed to a square by the resize: show faces squeezed that way too.
    aspect = np.exp(rng.uniform(np.log(narrowest), np.log(1.7))) if rng.rand() < 0.4 else 1.0
    window = np.array([side * min(1.0, 1.0 / aspect), side * min(1.0, aspect)])
    shift = rng.uniform(-0.12, 0.12, 2) * NOMINAL_SIDE
    angle = rng.uniform(-12, 12) if rng.rand() < 0.7 else 0.0
    centre = np.array([CACHE_SIZE / 2.0 + shift[0], CACHE_SIZE / 2.0 + shift[1]])
    rotation = cv2.getRotationMatrix2D(tuple(centre), angle, 1.0)
    stretch = (size / window)[:, None]
    matrix = np.hstack([stretch * rotation[:, :2],
                        stretch * (rotation[:, 2:] - centre[:, None]) + size / 2.0])
    image = cv2.warpAffine(crop, matrix, (size, size), flags=cv2.INTER_AREA
                           if side > size else cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    if rng.rand() < 0.5:
        image = image[:, ::-1]
    if rng.rand() < 0.1:
        image = cut_at_frame_edge(image, rng)
    image = image.astype(np.float32)
    exposure = rng.rand()
    if exposure < 0.25:  # a dim room seen by a webcam: dark, low contrast, noisy
        image = 255.0 * (image / 255.0) ** rng.uniform(1.0, 1.8) * rng.uniform(0.2, 0.6)
        image += rng.normal(0, rng.uniform(1, 6), image.shape)
    elif exposure < 0.33:  # a face against a window: washed out
        image = image * rng.uniform(1.3, 2.2)
    if rng.rand() < 0.3:  # white balance
        image = image * rng.uniform(0.85, 1.15, 3)
    image = np.clip(image, 0, 255)
    if rng.rand() < 0.8:  # colour: brightness, contrast, saturation, a small hue turn
        image = image * rng.uniform(0.65, 1.35) + rng.uniform(-25, 25)
        mean = image.mean()
        image = (image - mean) * rng.uniform(0.7, 1.3) + mean
        gray = image.mean(axis=2, keepdims=True)
        image = (image - gray) * rng.uniform(0.6, 1.4) + gray
        image = np.clip(image, 0, 255)
        if rng.rand() < 0.3:
            hsv = cv2.cvtColor(image.astype(np.uint8), cv2.COLOR_RGB2HSV)
            hsv[:, :, 0] = (hsv[:, :, 0].astype(np.int32) + rng.randint(-8, 9)) % 180
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    if rng.rand() < 0.1:
        image = np.repeat(image.mean(axis=2, keepdims=True), 3, axis=2)
    image = np.clip(image, 0, 255).astype(np.uint8)
    roll = rng.rand()
    if roll < 0.25:  # a face far away: few pixels, upsampled by the resize before the net
        low = int(rng.uniform(20, 56))
        image = cv2.resize(cv2.resize(image, (low, low), interpolation=cv2.INTER_AREA),
                           (size, size), interpolation=cv2.INTER_LINEAR)
    elif roll < 0.45:
        image = cv2.GaussianBlur(image, (0, 0), rng.uniform(0.5, 1.6))
    if rng.rand() < 0.3:
        ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.uniform(25, 85))])
        if ok:
            image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if rng.rand() < 0.2:
        image = np.clip(image + rng.normal(0, rng.uniform(2, 8), image.shape), 0, 255)
    return np.ascontiguousarray(image, dtype=np.uint8)
