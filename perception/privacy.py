"""Blur the faces of bystanders: people in view who raised no alert.

A frame snapshot or a recorded video is evidence about the one person who was alerted;
everybody else in it is a bystander whose face is personal data the robot has no reason to
keep. ``blur_bystanders`` is a pure function (a new frame, the input untouched) so the alert
store and the video path blur the same way, and it can be tested on real photos.

The blur is pixelation to a few blocks across the face followed by a Gaussian smear: the
blocks destroy identity (a face detector no longer finds a face there), the smear removes
the blocky edges that would still draw the eye. Each box is grown by ``margin`` on every
side because detector boxes are tight and hair, ears and chin identify people too. Faces
that did raise an alert are pasted back untouched afterwards, so a bystander standing
close behind them cannot smear the evidence.
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence, Tuple

import numpy as np

from perception.types import Box, Track

#: Fraction of the box size added on every side before blurring.
MARGIN = 0.25
#: Pixel blocks across the (grown) face: too few to recognise anyone.
BLOCKS = 6


def bystander_boxes(tracks: Sequence[Track], alerted_ids: Iterable[int]) -> Tuple[Box, ...]:
    """Boxes of the tracks whose id is not in ``alerted_ids`` (what to blur)."""
    alerted = set(int(i) for i in alerted_ids)
    return tuple(t.box for t in tracks if t.track_id not in alerted)


def blur_bystanders(frame_bgr: np.ndarray, tracks: Sequence[Track],
                    alerted_ids: Iterable[int]) -> np.ndarray:
    """A copy of ``frame_bgr`` with every track that raised no alert blurred.

    ``alerted_ids`` are the track ids that raised (or continue) an alert; their faces stay
    sharp even where a bystander's grown box overlaps them.
    """
    alerted = set(int(i) for i in alerted_ids)
    keep = tuple(t.box for t in tracks if t.track_id in alerted)
    return blur_boxes(frame_bgr, bystander_boxes(tracks, alerted), keep=keep)


def blur_boxes(frame_bgr: np.ndarray, boxes: Sequence[Box], keep: Sequence[Box] = (),
               margin: float = MARGIN) -> np.ndarray:
    """A copy of ``frame_bgr`` with each box in ``boxes`` (grown by ``margin``) blurred and
    each box in ``keep`` restored from the original afterwards."""
    import cv2

    shape = getattr(frame_bgr, "shape", None)
    if shape is None or len(shape) != 3 or shape[2] != 3 \
            or str(getattr(frame_bgr, "dtype", "")) != "uint8":
        raise ValueError("frame_bgr must be an HxWx3 uint8 array, got %s"
                         % (shape if shape is not None else type(frame_bgr).__name__,))
    if not 0.0 <= margin <= 2.0:
        raise ValueError("margin must be in [0, 2], got %r" % (margin,))
    height, width = shape[:2]
    out = frame_bgr.copy()
    for box in boxes:
        region = _clip(box, width, height, margin)
        if region is None:
            continue
        x1, y1, x2, y2 = region
        patch = out[y1:y2, x1:x2]
        h, w = patch.shape[:2]
        cells = max(1, int(math.ceil(max(h, w) / float(BLOCKS))))
        small = cv2.resize(patch, (max(1, w // cells), max(1, h // cells)),
                           interpolation=cv2.INTER_AREA)
        blocky = cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
        kernel = max(3, (cells // 2) * 2 + 1)
        out[y1:y2, x1:x2] = cv2.GaussianBlur(blocky, (kernel, kernel), 0)
    for box in keep:
        region = _clip(box, width, height, 0.0)
        if region is not None:
            x1, y1, x2, y2 = region
            out[y1:y2, x1:x2] = frame_bgr[y1:y2, x1:x2]
    return out


def _clip(box: Box, width: int, height: int, margin: float):
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise ValueError("a face box must be (x_min, y_min, x_max, y_max), got %r" % (box,))
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError("a face box must be finite, got %r" % (box,))
    mx, my = margin * (x2 - x1), margin * (y2 - y1)
    left, top = max(0, int(math.floor(x1 - mx))), max(0, int(math.floor(y1 - my)))
    right, bottom = min(width, int(math.ceil(x2 + mx))), min(height, int(math.ceil(y2 + my)))
    if right <= left or bottom <= top:
        return None
    return left, top, right, bottom
