"""Dataset scanning, source grouping, splitting and face cutting on real photos."""
from __future__ import annotations

import os

import numpy as np
import pytest

from perception.data import (CACHE_SIZE, _union_groups, cut_faces, group_key, load_holdout,
                             perceptual_hash, read_rgb, scan_classification, split_sources)
from common.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def test_copies_and_renamed_extensions_group_with_their_source():
    assert group_key("with_mask/0_0_0 copy 2 2.jpg") == group_key("with_mask/0_0_0.jpg")
    assert group_key("with_mask/0_0_0 copy.jpg") == group_key("with_mask/0_0_0 copy 17.jpg")
    assert group_key("with_mask/7__png.jpg") == group_key("with_mask/7.jpg")
    assert group_key("without_mask/0_0_anhu_0001.jpg") == \
        group_key("without_mask/0_0_anhu_0187.jpg")
    assert group_key("with_mask/7.jpg") != group_key("without_mask/7.jpg")
    assert group_key("with_mask/Screenshot (251).jpg") != group_key("with_mask/Screenshot (25).jpg")


def test_whole_groups_go_to_one_split_near_the_fractions():
    labels = ["masked"] * 100 + ["unmasked"] * 100
    groups = [i // 5 for i in range(200)]  # 40 groups of five
    split = split_sources(labels, groups, seed=3)
    for g in set(groups):
        assert len(set(split[[i for i in range(200) if groups[i] == g]])) == 1
    for label_range in (slice(0, 100), slice(100, 200)):
        counts = np.bincount(split[label_range], minlength=3)
        assert abs(counts[0] - 80) <= 5 and abs(counts[1] - 10) <= 5 and abs(counts[2] - 10) <= 5
    assert np.array_equal(split, split_sources(labels, groups, seed=3))
    with pytest.raises(ValueError):
        split_sources(labels, groups, fractions=(0.5, 0.5, 0.5))


def test_near_duplicate_photos_share_a_group():
    image = read_rgb(os.path.join(FIXTURES, "without_mask", "152.jpg"))
    brighter = np.clip(image.astype(int) + 6, 0, 255).astype(np.uint8)
    other = read_rgb(os.path.join(FIXTURES, "without_mask", "270.jpg"))
    hashes = [perceptual_hash(image), perceptual_hash(brighter), perceptual_hash(other)]
    groups = _union_groups(["a", "b", "c"], hashes, max_distance=2)
    assert groups[0] == groups[1] != groups[2]


def test_scan_skips_hold_out_files(tmp_path):
    for folder in ("with_mask", "without_mask"):
        (tmp_path / folder).mkdir()
        for name in ("a.jpg", "b.jpg", "notes.txt"):
            (tmp_path / folder / name).write_bytes(b"x")
    items = scan_classification(str(tmp_path), holdout={"with_mask/a.jpg"})
    assert items == [("with_mask/b.jpg", "masked"), ("without_mask/a.jpg", "unmasked"),
                     ("without_mask/b.jpg", "unmasked")]
    assert "with_mask/with_mask218.jpg" in load_holdout()


def test_faces_are_cut_with_landmarks_inside_the_crop():
    from perception.detector import FaceDetector

    detector = FaceDetector()
    image = read_rgb(os.path.join(FIXTURES, "without_mask", "270.jpg"))
    [(crop, marks, tight, valid)] = cut_faces(detector, image)
    assert crop.shape == (CACHE_SIZE, CACHE_SIZE, 3) and not tight
    assert np.all((marks > 0) & (marks < CACHE_SIZE))
    assert marks[0, 1] < marks[2, 1] < marks[3, 1]  # eyes above nose above mouth
    assert valid[0] <= valid[2] and valid[1] <= valid[3]
    # a photo with no face at all is kept whole, marked tight, without landmarks
    blank = np.full((120, 100, 3), 200, np.uint8)
    [(crop, marks, tight, _)] = cut_faces(detector, blank)
    assert tight and np.isnan(marks).all() and crop.shape == (CACHE_SIZE, CACHE_SIZE, 3)


def test_unreadable_files_name_themselves(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="broken.jpg"):
        read_rgb(str(bad))
