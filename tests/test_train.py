"""Training end to end on a handful of real photos, and the command line's error handling."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import portrait_dataset
from perception.classifier import MaskClassifier, crop_face
from perception.train import main, make_items, parse_args

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """A mask-classification folder made of the committed fixture photos."""
    root = tmp_path_factory.mktemp("datasets")
    portrait_dataset(root)
    return root


def test_one_epoch_writes_weights_that_the_classifier_loads(tiny_dataset, tmp_path, capsys):
    out = tmp_path / "tiny.pt"
    code = main(["--data", str(tiny_dataset), "--out", str(out), "--epochs", "1",
                 "--width-mult", "0.25", "--input-size", "64", "--batch-size", "8",
                 "--workers", "0", "--cache-dir", str(tmp_path / "cache"), "--light", "clahe",
                 "--quiet"])
    assert code == 0 and out.is_file()
    # --quiet hides progress bars, not the line that says how far a long run got
    assert "epoch 1: loss" in capsys.readouterr().out
    classifier = MaskClassifier(str(out))
    assert classifier.input_size == 64 and classifier.width_mult == 0.25
    assert classifier.light == "clahe"
    metrics = classifier.metrics
    assert 0.0 <= metrics["val_balanced_accuracy"] <= 1.0
    assert metrics["epoch"] == 1 and metrics["training_seconds"] > 0
    assert metrics["history"][0]["val_loss"] > 0
    sizes = metrics["split_crops"]
    assert sum(sizes["train"].values()) > 0 and sum(sizes["val"].values()) > 0
    import cv2

    image = cv2.imread(os.path.join(FIXTURES, "without_mask", "152.jpg"))[:, :, ::-1]
    result = classifier.classify([crop_face(np.ascontiguousarray(image), (10, 10, 150, 150))])
    assert len(result) == 1 and abs(sum(result[0].probabilities) - 1.0) < 1e-4
    # the crops were cached: a second build reads them instead of running MTCNN again
    assert any(name.endswith(".npz") for name in os.listdir(str(tmp_path / "cache")))


def test_average_from_saves_the_mean_of_the_validated_weights_of_those_epochs(
        tiny_dataset, tmp_path, monkeypatch):
    import torch

    import perception.train as train_module

    validated = []  # what each epoch validated, recorded on the way through (a spy, no stub)
    real_predict = train_module.predict

    def recording_predict(model, loader):
        validated.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return real_predict(model, loader)

    monkeypatch.setattr(train_module, "predict", recording_predict)
    out = tmp_path / "averaged.pt"
    code = main(["--data", str(tiny_dataset), "--out", str(out), "--epochs", "3",
                 "--average-from", "2", "--patience", "1", "--width-mult", "0.25",
                 "--input-size", "64", "--batch-size", "8", "--workers", "0",
                 "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert code == 0
    # three epochs, then the average itself; --patience 1 did not stop the run early
    assert len(validated) == 4
    classifier = MaskClassifier(str(out))
    assert classifier.metrics["averaged_epochs"] == [2, 3]
    assert classifier.metrics["epochs_run"] == 3
    saved = torch.load(str(out), map_location="cpu", weights_only=False)["state_dict"]
    name = "classifier.1.weight"
    expected = (validated[1][name] + validated[2][name]) / 2
    assert torch.allclose(saved[name], expected, atol=1e-6)
    assert not torch.allclose(saved[name], validated[2][name], atol=1e-6)


def test_each_unmasked_face_with_landmarks_gets_an_incorrect_mask(tiny_dataset, tmp_path):
    from perception.data import build_crop_set
    from perception.train import INCORRECT, SYNTH_INCORRECT, SYNTH_MASKED, item_label, render

    crop_set = build_crop_set(str(tiny_dataset), cache_dir=str(tmp_path), progress=False)
    indices = np.arange(len(crop_set.labels))
    items = make_items(crop_set, indices, np.random.RandomState(0), 1.0)
    drawable = int(np.sum((crop_set.labels == 1) & crop_set.has_landmarks()))
    assert drawable > 0
    assert sum(1 for _, kind in items if kind == SYNTH_INCORRECT) == drawable
    assert sum(1 for _, kind in items if kind == SYNTH_MASKED) == drawable
    incorrect = [it for it in items if it[1] == SYNTH_INCORRECT][0]
    assert item_label(crop_set, incorrect) == INCORRECT
    image = render(crop_set, incorrect, 96, np.random.RandomState(0), train=True)
    assert image.shape == (96, 96, 3) and image.dtype == np.uint8


def test_bad_arguments_are_refused():
    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--epochs", "0"])
    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--epochs", "4", "--average-from", "5"])
    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--init", "mask-recognition", "--width-mult", "0.5"])
    with pytest.raises(SystemExit):
        parse_args(["--data", "x", "--ema", "1.0"])  # an average that never moves


def test_a_missing_dataset_is_one_line_on_stderr(tmp_path):
    run = subprocess.run([sys.executable, "-m", "perception.train", "--data",
                          str(tmp_path / "nowhere"), "--out", str(tmp_path / "x.pt")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert "mask-classification" in run.stderr and len(run.stderr.strip().splitlines()) == 1
