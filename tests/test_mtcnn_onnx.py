"""MTCNN on onnxruntime (perception/mtcnn_onnx.py) finds the faces facenet-pytorch finds, and
its ONNX files are checked like the classifier's."""
from __future__ import annotations

import dataclasses
import os

import numpy as np
import onnx
import pytest

from common.errors import InputError
from conftest import astronaut_bgr, fixture_paths, head_patch, paste, read_bgr, wall
from perception.detector import FaceDetector
from perception.export import MODEL_CARD, sha256
from perception.mtcnn_export import compare, export_mtcnn
from perception.mtcnn_onnx import (STAGES, MTCNNOnnx, area_resize, model_path, nms,
                                   pooling_bins)

FIX = "python -m perception.export"


@pytest.fixture(scope="module")
def onnx_detector():
    return FaceDetector(backend="mtcnn", runtime="onnx")


def photos():
    """The 16 fixture photos, the astronaut, and two walls of fixture heads from 16 to 90 px
    (small faces are where resampling and crops differ most)."""
    paths = fixture_paths("with_mask") + fixture_paths("without_mask")
    images = [read_bgr(p) for p in paths] + [astronaut_bgr()]
    for sides in ((16, 20, 24, 28, 34, 40, 48, 56), (64, 72, 80, 90, 30, 26, 22, 18)):
        frame = wall()
        for k, side in enumerate(sides):
            paste(frame, head_patch(paths[(k * 3 + side) % len(paths)], side),
                  20 + (k % 4) * 150, 30 + (k // 4) * 220)
        images.append(frame)
    return images


def test_onnx_mtcnn_finds_the_faces_facenet_pytorch_finds(detector, onnx_detector):
    tally = compare(photos(), detector, onnx_detector)
    # Enough faces that the fraction means something: one per fixture photo, the astronaut
    # and most of the heads on the walls.
    assert tally.faces >= 25, tally.row()
    assert tally.fraction() >= 0.99, tally.row()
    assert tally.extra == 0, tally.row()
    assert tally.worst_score < 1e-3 and tally.worst_landmark < 0.02, tally.row()


def test_the_agreement_measure_fails_on_boxes_that_differ(detector, onnx_detector):
    """The check above can fail: ONNX boxes shifted by a tenth of their width do not count."""

    class Shifted:
        def detect(self, image):
            return [dataclasses.replace(f, box=(f.box[0] + f.width / 10, f.box[1],
                                                f.box[2] + f.width / 10, f.box[3]))
                    for f in onnx_detector.detect(image)]

    tally = compare(photos()[:4], detector, Shifted())
    assert tally.faces == 4 and tally.same == 0 and tally.extra == 4


def test_onnx_mtcnn_scores_landmarks_and_order_match_on_the_astronaut(detector, onnx_detector):
    (a,), (b,) = detector.detect(astronaut_bgr()), onnx_detector.detect(astronaut_bgr())
    assert np.allclose(a.box, b.box, atol=0.05)
    assert np.allclose(a.landmarks, b.landmarks, atol=0.05)
    assert abs(a.score - b.score) < 1e-5


@pytest.mark.parametrize("shape,size", [((480, 640), (171, 228)), ((37, 29), (24, 24)),
                                        ((100, 100), (48, 48)), ((13, 50), (24, 24))])
def test_area_resize_is_torchs_area_interpolation(shape, size):
    import torch

    image = np.random.default_rng(0).integers(0, 256, shape + (3,)).astype(np.float32)
    expected = torch.nn.functional.interpolate(
        torch.from_numpy(image).permute(2, 0, 1)[None], size=size, mode="area")
    got = area_resize(image, *size)
    assert got.shape == size + (3,)
    assert np.abs(got - expected[0].permute(1, 2, 0).numpy()).max() < 1e-3


def test_pooling_bins_overlap_when_the_ratio_is_not_whole():
    start, end = pooling_bins(5, 3)
    assert start.tolist() == [0, 1, 3] and end.tolist() == [2, 4, 5]


def test_nms_keeps_what_torchvision_keeps():
    import torch
    from torchvision.ops import nms as torch_nms

    rng = np.random.default_rng(1)
    corners = rng.uniform(0, 100, (300, 2)).astype(np.float32)
    boxes = np.concatenate([corners, corners + rng.uniform(5, 40, (300, 2))], 1).astype(np.float32)
    scores = np.round(rng.uniform(0, 1, 300), 1).astype(np.float32)  # many ties
    for threshold in (0.5, 0.7):
        expected = torch_nms(torch.from_numpy(boxes), torch.from_numpy(scores), threshold)
        assert nms(boxes, scores, threshold).tolist() == expected.tolist()


def test_missing_model_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(InputError, match="mtcnn_pnet.onnx does not exist.*" + FIX):
        MTCNNOnnx(models_dir=str(tmp_path))


def test_garbage_model_names_the_file_and_the_fix(tmp_path):
    for stage in STAGES:
        (tmp_path / ("mtcnn_%s.onnx" % stage)).write_bytes(open(model_path(stage), "rb").read())
    (tmp_path / "mtcnn_rnet.onnx").write_bytes(b"not a model\x00\xff" * 40)
    with pytest.raises(InputError, match="mtcnn_rnet.onnx cannot be read.*" + FIX):
        MTCNNOnnx(models_dir=str(tmp_path))


def test_another_stages_file_in_place_is_refused(tmp_path):
    """R-net's file copied over O-net's: it loads, but would give nonsense; refuse it."""
    for stage in STAGES:
        (tmp_path / ("mtcnn_%s.onnx" % stage)).write_bytes(open(model_path(stage), "rb").read())
    (tmp_path / "mtcnn_onet.onnx").write_bytes(open(model_path("rnet"), "rb").read())
    with pytest.raises(InputError, match="mtcnn_onet.onnx is not MTCNN's onet.*" + FIX):
        MTCNNOnnx(models_dir=str(tmp_path))


def test_committed_exports_are_of_the_wheels_weights_and_in_the_model_card():
    import facenet_pytorch

    with open(MODEL_CARD, encoding="utf-8") as handle:
        card = handle.read()
    for stage in STAGES:
        path = model_path(stage)
        model = onnx.load(path)
        assert not any(init.data_location == onnx.TensorProto.EXTERNAL
                       for init in model.graph.initializer), "weights must be inside the file"
        meta = {p.key: p.value for p in model.metadata_props}
        source = os.path.join(os.path.dirname(facenet_pytorch.__file__), "data", stage + ".pt")
        assert meta["mtcnn_stage"] == stage and meta["source_sha256"] == sha256(source)
        assert sha256(path) in card, "%s's sha256 is not in the model card" % stage


def test_export_writes_single_files_that_give_the_same_outputs(tmp_path):
    digests = export_mtcnn(str(tmp_path))
    assert sorted(os.listdir(str(tmp_path))) == ["mtcnn_%s.onnx" % s for s in sorted(STAGES)]
    assert digests == {s: sha256(str(tmp_path / ("mtcnn_%s.onnx" % s))) for s in STAGES}
    image = astronaut_bgr()[:, :, ::-1]
    fresh, shipped = MTCNNOnnx(models_dir=str(tmp_path)), MTCNNOnnx()
    for a, b in zip(fresh(image), shipped(image)):
        assert np.allclose(a, b, atol=1e-4)


def test_pnet_takes_any_size_and_rnet_any_batch():
    detector = MTCNNOnnx()
    for height, width in ((12, 12), (31, 57), (200, 90)):
        reg, prob = detector._run("pnet", np.zeros((1, height, width, 3), np.float32))
        assert reg.shape[1] == 4 and prob.shape[1] == 2
    reg, prob = detector._run("rnet", np.zeros((7, 24, 24, 3), np.float32))
    assert reg.shape == (7, 4) and prob.shape == (7, 2)


def test_the_runtime_setting_reaches_the_detector():
    """`runtime: onnx` in the settings file makes the node's MTCNN the ONNX one as well."""
    from behaviors.settings import PerceptionSettings

    pipeline = PerceptionSettings(detector="mtcnn", runtime="onnx").build_pipeline()
    assert pipeline.detector.runtime == "onnx" and pipeline.classifier.runtime == "onnx"
    assert isinstance(pipeline.detector._find, MTCNNOnnx)
    assert pipeline.detector._find.min_face_size == pipeline.detector.min_face_size
    torch_pipeline = PerceptionSettings(detector="mtcnn", runtime="torch").build_pipeline()
    assert not isinstance(torch_pipeline.detector._find, MTCNNOnnx)
