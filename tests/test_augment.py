"""Augmentation keeps the live framing: a cached crop's view is what crop_face cuts live."""
from __future__ import annotations

import os

import numpy as np

from perception.augment import augment, cut_at_frame_edge, refill_padding, view
from perception.classifier import crop_face
from perception.data import CACHE_SIZE, cut_faces, read_rgb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PHOTO = os.path.join(ROOT, "tests", "fixtures", "without_mask", "270.jpg")


def test_the_view_of_a_cached_crop_matches_the_live_crop():
    import cv2

    from perception.detector import FaceDetector

    image = read_rgb(PHOTO)
    face = FaceDetector().detect(image, color="rgb")[0]
    [(cached, _, _, _)] = cut_faces(FaceDetector(), image)
    live = cv2.resize(crop_face(image, face.box), (96, 96), interpolation=cv2.INTER_AREA)
    difference = np.abs(view(cached, 96).astype(int) - live.astype(int)).mean()
    assert difference < 6.0
    # a crop shifted by a tenth of its size differs clearly: the check can fail
    x1, y1, x2, y2 = face.box
    moved = (x1 + 0.1 * (x2 - x1), y1, x2 + 0.1 * (x2 - x1), y2)
    other = cv2.resize(crop_face(image, moved), (96, 96), interpolation=cv2.INTER_AREA)
    assert np.abs(view(cached, 96).astype(int) - other.astype(int)).mean() > 2 * difference


def test_augmented_views_vary_and_keep_shape():
    from perception.detector import FaceDetector

    [(cached, _, _, valid)] = cut_faces(FaceDetector(), read_rgb(PHOTO))
    first = augment(cached, 112, np.random.RandomState(0), valid=valid)
    again = augment(cached, 112, np.random.RandomState(0), valid=valid)
    other = augment(cached, 112, np.random.RandomState(1), valid=valid)
    assert first.shape == (112, 112, 3) and first.dtype == np.uint8
    assert np.array_equal(first, again) and not np.array_equal(first, other)


def test_padding_refill_keeps_the_photo_and_replaces_the_rest():
    crop = np.full((CACHE_SIZE, CACHE_SIZE, 3), 100, np.uint8)
    crop[:, :40] = 7  # pretend the left 40 columns are edge padding
    valid = np.array([40, 0, CACHE_SIZE, CACHE_SIZE], np.float32)
    changed = 0
    for seed in range(6):
        out = refill_padding(crop, valid, np.random.RandomState(seed))
        assert np.array_equal(out[:, 40:], crop[:, 40:])
        changed += int(not np.array_equal(out[:, :40], crop[:, :40]))
    assert changed >= 5


def test_a_face_cut_by_the_frame_repeats_its_edge():
    image = np.random.RandomState(0).randint(0, 255, (64, 64, 3)).astype(np.uint8)
    out = cut_at_frame_edge(image, np.random.RandomState(4))
    assert out.shape == image.shape and not np.array_equal(out, image)
    rows_same = [np.all(out[i] == out[i + 1]) for i in range(63)]
    cols_same = [np.all(out[:, i] == out[:, i + 1]) for i in range(63)]
    assert sum(rows_same) >= 5 or sum(cols_same) >= 5


def _width_shares(narrowest: float):
    """Width over height of a bright square "face" in 300 training views (1.0 unsqueezed);
    views that the exposure jitter leaves without contrast are skipped."""
    crop = np.full((CACHE_SIZE, CACHE_SIZE, 3), 60, np.uint8)
    centre, half = CACHE_SIZE // 2, CACHE_SIZE // 10
    crop[centre - half:centre + half, centre - half:centre + half] = 255
    shares = []
    for seed in range(300):
        gray = augment(crop, 112, np.random.RandomState(seed), narrowest=narrowest).mean(axis=2)
        low, high = np.percentile(gray, 5), np.percentile(gray, 99.5)
        if high - low < 40:
            continue
        rows, cols = np.nonzero(gray > (low + high) / 2)
        shares.append((cols.max() - cols.min() + 1) / float(rows.max() - rows.min() + 1))
    return np.array(shares)


def test_narrowest_sets_how_far_a_face_is_squeezed():
    # the 1st percentile, not the minimum: a view cut at the frame edge can look narrower
    default = np.percentile(_width_shares(0.85), 1)
    wide_range = np.percentile(_width_shares(0.55), 1)
    assert 0.78 <= default <= 0.95
    assert wide_range < 0.65
