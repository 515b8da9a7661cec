"""Training on the Kaggle crowd photos: which photos may be trained on, how faces are cut,
and the figures the real-crowds targets are judged by (Wilson intervals, alert rates)."""
from __future__ import annotations

import os

import numpy as np
import pytest

from conftest import FIXTURES, datasets_dir, read_bgr
from perception.data import load_holdout
from perception.evaluate import rates, wilson_interval
from perception.kaggle import load_test_split
from perception.kaggle_crops import (HOLDOUT_PREFIX, MIN_HEIGHT, build_kaggle_crop_set,
                                     held_out_photos, training_photos)
from perception.train import INCORRECT, REAL, make_items
from perception.types import LABELS


def test_wilson_interval_matches_the_textbook_values():
    low, high = wilson_interval(8, 10)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson_interval(0, 20)
    assert low == 0.0 and high == pytest.approx(0.1611, abs=1e-4)
    low, high = wilson_interval(34, 34)
    assert high == 1.0 and low == pytest.approx(0.8985, abs=1e-4)
    assert all(np.isnan(v) for v in wilson_interval(0, 0))


def test_rates_count_an_incorrect_verdict_as_an_alert_on_an_unmasked_face():
    m, u, i = (LABELS.index(x) for x in ("masked", "unmasked", "incorrect"))
    truth = [m, m, m, m, u, u, u, i, i]
    predicted = [m, m, u, i, u, i, m, i, m]
    out = rates(truth, predicted)
    assert out["false alerts masked"][:2] == [2, 4]
    assert out["recall unmasked"][:2] == [1, 3]
    assert out["alert rate unmasked"][:2] == [2, 3]
    assert out["recall incorrect"][:2] == [1, 2]
    assert out["alert rate incorrect"][:2] == [1, 2]
    assert out["recall masked"][:2] == [2, 4]


def _kaggle_folder(tmp_path, photos):
    """A mask-detection-kaggle folder of {name: (bgr image, [(label, box)])}."""
    import cv2

    root = tmp_path / "mask-detection-kaggle"
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir()
    for name, (image, objects) in photos.items():
        assert cv2.imwrite(str(root / "images" / name), image)
        boxes = "".join("<object><name>%s</name><bndbox><xmin>%d</xmin><ymin>%d</ymin>"
                        "<xmax>%d</xmax><ymax>%d</ymax></bndbox></object>" % ((label,) + box)
                        for label, box in objects)
        (root / "annotations" / name.replace(".jpg", ".xml")).write_text(
            "<annotation><filename>%s</filename>%s</annotation>" % (name, boxes))
    return str(tmp_path)


def test_crops_leave_out_the_test_split_and_the_held_out_photos_and_tiny_faces(tmp_path):
    from perception.detector import FaceDetector

    detector = FaceDetector(backend="centerface")
    face = read_bgr(os.path.join(FIXTURES, "without_mask", "261.jpg"))
    found = detector.detect(face)
    assert found, "the fixture face must be found for this test"
    box = tuple(int(round(v)) for v in found[0].box)
    corner = (2, 2, 2 + 30, 2 + 34)            # a labelled face the detector does not find
    tiny = (40, 2, 40 + 8, 2 + MIN_HEIGHT - 1)  # too small to learn from
    in_test = load_test_split()[0]
    held = "maksssksksss525.jpg"
    assert held in held_out_photos()
    objects = [("without_mask", box), ("mask_weared_incorrect", corner), ("with_mask", tiny)]
    data = _kaggle_folder(tmp_path, {"maksssksksss9999.jpg": (face, objects),
                                     in_test: (face, objects), held: (face, objects)})
    assert [os.path.basename(e.path) for e in training_photos(data)] == ["maksssksksss9999.jpg"]
    crops = build_kaggle_crop_set(data, cache_dir=str(tmp_path / "cache"), detector=detector,
                                  progress=False)
    assert crops.files == [HOLDOUT_PREFIX + "maksssksksss9999.jpg"]
    assert [LABELS[c] for c in crops.labels] == ["unmasked", "incorrect"]
    # the face the detector found is cut around its box and carries its landmarks, so masks
    # can be drawn on it; the other is cut around the hand-drawn box, without landmarks
    assert crops.has_landmarks().tolist() == [True, False]
    assert crops.crops.shape[1:] == (160, 160, 3) and not crops.tight.any()
    again = build_kaggle_crop_set(data, cache_dir=str(tmp_path / "cache"), detector=None,
                                  progress=False)  # from the cache: no detector is built
    assert np.array_equal(again.crops, crops.crops)


def test_real_incorrect_crops_are_drawn_several_times_an_epoch(tmp_path):
    class Crops:
        labels = np.array([LABELS.index("masked"), INCORRECT, LABELS.index("unmasked")])

        @staticmethod
        def has_landmarks():
            return np.array([False, False, False])

    items = make_items(Crops, np.arange(3), np.random.RandomState(0), 1.0, repeat_incorrect=4)
    assert sorted(items) == [(0, REAL)] + [(1, REAL)] * 4 + [(2, REAL)]


def test_fine_tuning_refuses_weights_made_for_another_input(tmp_path):
    from common.errors import InputError
    from perception.classifier import DEFAULT_WEIGHTS, build_model
    from perception.train import load_weights

    with pytest.raises(InputError) as info:
        load_weights(build_model(1.0), DEFAULT_WEIGHTS, "none", 112)
    assert "--light clahe" in str(info.value)


@pytest.mark.dataset
def test_the_training_photos_are_all_but_the_test_split_and_the_hold_out():
    names = {os.path.basename(e.path) for e in training_photos(datasets_dir())}
    test, held = set(load_test_split()), held_out_photos(load_holdout())
    assert len(held) == 8 and not names & test and not names & held
    assert len(names) == 853 - len(test) - len(held)


def test_landmarks_of_a_turned_head_are_dropped_so_no_mask_is_drawn_from_them():
    from perception.data import CropSet
    from perception.kaggle_crops import frontal_landmarks_only

    frontal = np.array([[60, 70], [100, 70], [80, 90], [65, 110], [95, 110]], np.float32)
    profile = frontal.copy()
    profile[1, 0] = 63.0  # eyes 3 px apart: a head seen from the side
    crops = CropSet(crops=np.zeros((3, 160, 160, 3), np.uint8), labels=np.zeros(3, np.int64),
                    landmarks=np.stack([frontal, profile, np.full((5, 2), np.nan, np.float32)]),
                    tight=np.zeros(3, bool), source=np.arange(3), files=["a", "b", "c"],
                    split=np.zeros(3, np.int64), valid=np.zeros((3, 4), np.float32))
    assert frontal_landmarks_only(crops).has_landmarks().tolist() == [True, False, False]


def test_kaggle_all_trains_on_the_kaggle_validation_photos_too(tmp_path):
    """Seven crowd photos, each with one real mask below the nose: by photo, one of them is
    a validation photo, unless --kaggle-all puts it into training."""
    from conftest import portrait_dataset
    from perception.classifier import MaskClassifier
    from perception.train import main

    portrait_dataset(tmp_path)
    face = read_bgr(os.path.join(FIXTURES, "without_mask", "261.jpg"))
    box = (20, 20, face.shape[1] - 20, face.shape[0] - 20)
    below_nose = [("mask_weared_incorrect", box)]
    _kaggle_folder(tmp_path, {"maksssksksss%d.jpg" % (9000 + i): (face, below_nose)
                              for i in range(7)})
    common = ["--data", str(tmp_path), "--kaggle", "--epochs", "1", "--average-from", "1",
              "--width-mult", "0.25", "--input-size", "64", "--batch-size", "8",
              "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--quiet"]
    sizes = {}
    for flag in ([], ["--kaggle-all"]):
        out = tmp_path / ("w%d.pt" % len(flag))
        assert main(common + flag + ["--out", str(out)]) == 0
        sizes[bool(flag)] = MaskClassifier(str(out)).metrics["split_crops"]
    assert (sizes[False]["train"]["incorrect"], sizes[False]["val"]["incorrect"]) == (6, 1)
    assert (sizes[True]["train"]["incorrect"], sizes[True]["val"]["incorrect"]) == (7, 0)
    # the portraits keep their validation split
    assert sizes[True]["val"]["masked"] == sizes[False]["val"]["masked"] > 0


def test_kaggle_all_without_kaggle_is_refused(capsys):
    from perception.train import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--kaggle-all", "--average-from", "1"])
    assert "needs --kaggle" in capsys.readouterr().err
