"""The Kaggle crowd set's loader and its fixed test split: determinism, exclusion of photos
that also occur in mask-classification, and the committed split file."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import datasets_dir
from common.errors import InputError
from perception.kaggle import (TEST_SPLIT_FILE, choose_test_split, find_overlaps, kaggle_root,
                               load_kaggle, load_test_split)

NAMES = ["maksssksksss%d.jpg" % i for i in range(100)]


def test_the_split_is_a_fixed_fifth_whatever_the_order_of_the_names():
    split = choose_test_split(NAMES)
    assert len(split) == 20 and split == sorted(split) and set(split) <= set(NAMES)
    assert choose_test_split(list(reversed(NAMES))) == split
    assert choose_test_split(NAMES, seed=1) != split
    assert len(choose_test_split(NAMES, fraction=0.5)) == 50


def test_excluding_a_photo_takes_out_only_that_photo():
    split = choose_test_split(NAMES)
    assert choose_test_split(NAMES, exclude=[split[3], "not_there.jpg"]) == \
        split[:3] + split[4:]
    with pytest.raises(ValueError):
        choose_test_split(NAMES, fraction=1.0)


def _write(path, rgb):
    import cv2

    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(path, np.ascontiguousarray(rgb[:, :, ::-1]),
                       [cv2.IMWRITE_JPEG_QUALITY, 80])
    return path


def test_overlaps_are_crops_and_collages_of_a_photo_and_nothing_else(tmp_path):
    import cv2
    from skimage import data

    photos = {name: getattr(data, name)() for name in ("astronaut", "coffee", "chelsea",
                                                       "rocket")}
    ours = [_write(str(tmp_path / "k" / (n + ".jpg")), p) for n, p in photos.items()]
    crop = cv2.resize(photos["coffee"][50:350, 100:500], None, fx=0.7, fy=0.7,
                      interpolation=cv2.INTER_AREA)
    collage = np.hstack([cv2.resize(photos["astronaut"], (300, 300)),
                         cv2.resize(data.camera(), (200, 300))[:, :, None].repeat(3, 2)])
    theirs = [_write(str(tmp_path / "c" / "coffee_crop.jpg"), crop),
              _write(str(tmp_path / "c" / "collage.jpg"), collage),
              _write(str(tmp_path / "c" / "camera.jpg"),
                     np.stack([data.camera()] * 3, axis=-1))]
    overlaps = find_overlaps(ours, theirs)
    assert {os.path.basename(k): os.path.basename(v) for k, v in overlaps.items()} == \
        {"coffee.jpg": "coffee_crop.jpg", "astronaut.jpg": "collage.jpg"}
    assert find_overlaps(ours, theirs[2:]) == {}


def _annotation(name, objects):
    boxes = "".join("<object><name>%s</name><bndbox><xmin>%d</xmin><ymin>%d</ymin>"
                    "<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>" % ((label,) + box)
                    for label, box in objects)
    return "<annotation><filename>%s</filename>%s</annotation>" % (name, boxes)


def test_load_kaggle_maps_the_three_classes_and_picks_the_split(tmp_path):
    root = tmp_path / "mask-detection-kaggle"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for i, label in enumerate(("with_mask", "without_mask", "mask_weared_incorrect")):
        (root / "images" / ("maksssksksss%d.jpg" % i)).write_bytes(b"")
        (root / "annotations" / ("maksssksksss%d.xml" % i)).write_text(
            _annotation("maksssksksss%d.jpg" % i, [(label, (1, 2, 30, 40))]))
    entries = load_kaggle(str(tmp_path))
    assert [e.boxes for e in entries] == [(((1.0, 2.0, 30.0, 40.0), label),) for label in
                                          ("masked", "unmasked", "incorrect")]
    assert [os.path.basename(e.path) for e in load_kaggle(str(tmp_path),
                                                          ["maksssksksss1.jpg"])] == \
        ["maksssksksss1.jpg"]
    with pytest.raises(InputError):
        load_kaggle(str(tmp_path), ["maksssksksss7.jpg"])
    (root / "annotations" / "maksssksksss0.xml").write_text(
        _annotation("maksssksksss0.jpg", [("helmet", (1, 2, 3, 4))]))
    with pytest.raises(InputError) as info:
        load_kaggle(str(tmp_path))
    assert "helmet" in str(info.value)


def test_a_missing_split_file_says_how_to_make_it(tmp_path):
    with pytest.raises(InputError) as info:
        load_test_split(str(tmp_path / "split.txt"))
    assert "split.txt" in str(info.value) and "perception.kaggle" in str(info.value)


@pytest.mark.dataset
def test_the_committed_split_is_the_one_the_data_gives():
    """The split follows from the names and the overlaps listed in the file, and every
    listed overlap is one (finding them all again takes minutes: python -m perception.kaggle)."""
    root = kaggle_root(datasets_dir())
    with open(TEST_SPLIT_FILE, encoding="utf-8") as handle:
        listed = [line[1:].strip().split(" = ") for line in handle if " = " in line]
    assert 5 <= len(listed) <= 30
    names = sorted(os.listdir(os.path.join(root, "images")))
    split = load_test_split()
    assert split == choose_test_split(names, [name for name, _ in listed])
    assert 150 <= len(split) <= 175 and not set(split) & {name for name, _ in listed}
    classification = os.path.join(datasets_dir(), "mask-classification")
    for name, twin in listed[:5]:
        ours = os.path.join(root, "images", name)
        assert find_overlaps([ours], [os.path.join(classification, twin)]) != {}, name
