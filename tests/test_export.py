"""perception.export: the shipped weights through ONNX and back give the same answers."""
from __future__ import annotations

import json
import os

import numpy as np
import onnx
import pytest

from conftest import run_module
from perception.classifier import DEFAULT_ONNX, DEFAULT_WEIGHTS, ONNX_METADATA, MaskClassifier
from perception.export import MODEL_CARD, compare, export, fixture_crops, sha256

#: Largest softmax difference allowed between torch and onnxruntime on the same crop. The
#: export measured 1.1e-7 on the fixtures and 1.5e-6 on 931 Kaggle faces (model card); float32
#: kernels differ in summation order, so leave two orders of magnitude.
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def crops():
    found = fixture_crops()
    assert len(found) >= 16, "CenterFace found only %d faces in the 16 fixtures" % len(found)
    return found


def test_export_round_trip_keeps_labels_and_probabilities(tmp_path, classifier, crops):
    out = str(tmp_path / "classifier.onnx")
    digest = export(DEFAULT_WEIGHTS, out)
    assert digest == sha256(out)
    model = onnx.load(out)
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL
                   for init in model.graph.initializer), "weights must be inside the file"
    assert os.listdir(str(tmp_path)) == ["classifier.onnx"]
    meta = {p.key: p.value for p in model.metadata_props}
    assert set(ONNX_METADATA) <= set(meta)
    assert meta["source_sha256"] == sha256(DEFAULT_WEIGHTS)
    assert json.loads(meta["input_size"]) == classifier.input_size

    exported = MaskClassifier(out, runtime="onnx")
    assert (exported.labels, exported.input_size, exported.light) == (
        classifier.labels, classifier.input_size, classifier.light)
    result = compare(classifier, exported, crops)
    assert result["crops"] == len(crops)
    assert result["labels_agree"] == len(crops)
    assert result["max_abs_diff"] < TOLERANCE
    # A batch of one and a batch of many give the same probabilities (dynamic batch axis).
    alone = exported.probabilities(crops[:1])
    assert np.allclose(alone, exported.probabilities(crops)[:1], atol=1e-6)


def test_committed_onnx_is_the_export_of_the_committed_weights(classifier, crops):
    """The shipped .onnx loads (its recorded .pt checksum matches the .pt beside it) and
    labels the fixture faces as torch does."""
    shipped = MaskClassifier(runtime="onnx")
    assert shipped.weights_path == DEFAULT_ONNX
    expected = [r.label for r in classifier.classify(crops)]
    assert [r.label for r in shipped.classify(crops)] == expected
    with open(MODEL_CARD, encoding="utf-8") as handle:
        card = handle.read()
    assert sha256(DEFAULT_ONNX) in card and sha256(DEFAULT_WEIGHTS) in card


def test_export_command_with_another_output_leaves_the_model_card_alone(tmp_path):
    with open(MODEL_CARD, "rb") as handle:
        before = handle.read()
    out = str(tmp_path / "elsewhere.onnx")
    done = run_module("perception.export", "--out", out, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "labels agree on" in done.stdout and os.path.isfile(out)
    with open(MODEL_CARD, "rb") as handle:
        assert handle.read() == before


def test_export_of_a_missing_weights_file_is_one_clear_error(tmp_path):
    done = run_module("perception.export", "--weights", str(tmp_path / "none.pt"),
                      "--out", str(tmp_path / "none.onnx"))
    assert done.returncode == 2
    assert "none.pt" in done.stderr and "Traceback" not in done.stderr
