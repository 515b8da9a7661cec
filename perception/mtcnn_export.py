"""Export facenet-pytorch's MTCNN networks to ONNX, and measure that the ONNX detector finds
the same faces.

    python -m perception.export [--data ../shared/datasets]     # the classifier and this
    python -m perception.export --models mtcnn                  # only this

Why a file per network: MTCNN is three networks with numpy steps between them
(perception/mtcnn_onnx.py runs those steps). P-net is fully convolutional and is exported with
a dynamic height and width (one file serves every pyramid level); R-net and O-net take 24 and
48 px crops with a dynamic batch. Each file is self-contained (``external_data=False``) and
records in its metadata its stage and the sha256 of the facenet-pytorch weights it came from.

The agreement is measured with the detector as the pipeline builds it
(``FaceDetector(backend="mtcnn")``, torch against onnx): a torch face counts as found when an
ONNX face overlaps it with IoU >= 0.9, one-to-one. Written into the model card's MTCNN
section, with the files' checksums.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np

from perception.mtcnn_onnx import INPUT_NAME, MODELS_DIR, OUTPUTS, STAGES, model_path
from perception.tracker import iou

CARD_HEADING = "## MTCNN in ONNX (the robot's face detector)"
#: Two boxes are the same face at this overlap or more.
MIN_IOU = 0.9
#: The example input each network is traced with (P-net's height and width stay dynamic).
_EXAMPLE_SIDE = {"pnet": 64, "rnet": 24, "onet": 48}


def export_mtcnn(models_dir: str = MODELS_DIR) -> Dict[str, str]:
    """Write the three ``mtcnn_*.onnx`` into ``models_dir``; returns stage -> sha256."""
    import facenet_pytorch
    from facenet_pytorch import MTCNN

    from perception.export import sha256

    mtcnn = MTCNN(device="cpu")
    weights = os.path.join(os.path.dirname(facenet_pytorch.__file__), "data")
    digests = {}
    for stage in STAGES:
        source = os.path.join(weights, "%s.pt" % stage)
        meta = {"mtcnn_stage": stage, "source": "facenet_pytorch/data/%s.pt" % stage,
                "source_sha256": sha256(source),
                "facenet_pytorch": getattr(facenet_pytorch, "__version__", "2.6.0")}
        out = model_path(stage, models_dir)
        _write(getattr(mtcnn, stage), stage, out, meta)
        digests[stage] = sha256(out)
    return digests


def _write(module, stage: str, out_path: str, meta: Dict[str, str]) -> None:
    import io
    import warnings

    import onnx
    import torch

    from perception.export import OPSET, set_metadata

    side = _EXAMPLE_SIDE[stage]
    axes = {0: "batch", 2: "height", 3: "width"} if stage == "pnet" else {0: "batch"}
    dynamic = {INPUT_NAME: axes}
    dynamic.update({name: {0: "batch"} for name in OUTPUTS[stage]})
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter (see perception.export)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, side, side),), buffer,
                          dynamo=False, external_data=False, opset_version=OPSET,
                          input_names=[INPUT_NAME], output_names=OUTPUTS[stage],
                          do_constant_folding=True, dynamic_axes=dynamic)
    model = onnx.load_from_string(buffer.getvalue())
    set_metadata(model, meta)
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    onnx.save_model(model, out_path, save_as_external_data=False)


def pair_by_iou(first: Sequence, second: Sequence, min_iou: float = MIN_IOU
                ) -> List[Tuple[int, int]]:
    """(i, j) pairs of boxes of ``first`` and ``second``, greedily by highest IoU, each box
    in one pair at most, only pairs with IoU >= ``min_iou``. Plain IoU on purpose: the
    tracker's ``match_boxes`` also pairs by closeness of centres, too loose for "the same
    box"."""
    ranked = sorted(((iou(a, b), i, j) for i, a in enumerate(first)
                     for j, b in enumerate(second)), reverse=True)
    used_a, used_b, pairs = set(), set(), []
    for overlap, i, j in ranked:
        if overlap >= min_iou and i not in used_a and j not in used_b:
            used_a.add(i)
            used_b.add(j)
            pairs.append((i, j))
    return pairs


class Agreement:
    """Faces of a reference detector, and how many another detector found at IoU >= MIN_IOU."""

    def __init__(self) -> None:
        self.images = self.faces = self.same = self.extra = 0
        self.worst_score = self.worst_landmark = 0.0

    def add(self, reference: Sequence, other: Sequence) -> None:
        """Both: the ``Face`` list each detector gave for one image."""
        pairs = pair_by_iou([a.box for a in reference], [b.box for b in other])
        for i, j in pairs:
            a, b = reference[i], other[j]
            self.worst_score = max(self.worst_score, abs(a.score - b.score))
            # Landmark error relative to the face's width, so sizes compare.
            moved = np.abs(np.subtract(a.landmarks, b.landmarks)).max() / max(a.width, 1.0)
            self.worst_landmark = max(self.worst_landmark, float(moved))
        self.images += 1
        self.faces += len(reference)
        self.same += len(pairs)
        self.extra += len(other) - len(pairs)

    def fraction(self) -> float:
        return self.same / float(self.faces) if self.faces else 1.0

    def row(self) -> List[str]:
        return ["%d" % self.images, "%d" % self.faces,
                "%d (%.2f%%)" % (self.same, 100.0 * self.fraction()), "%d" % self.extra,
                "%.1e" % self.worst_score, "%.1e" % self.worst_landmark]


ROW_HEADER = ["images", "torch faces", "same box in onnx (IoU >= %.1f)" % MIN_IOU,
              "onnx-only faces", "largest score difference",
              "largest landmark difference (x face width)"]


def compare(images: Iterable[np.ndarray], reference, other) -> Agreement:
    """Run both detectors (``detect(bgr)``) on every BGR image."""
    tally = Agreement()
    for image in images:
        tally.add(reference.detect(image), other.detect(image))
    return tally


def fixture_images() -> Iterable[np.ndarray]:
    """The 16 fixture photos and scikit-image's astronaut, BGR."""
    from perception.export import FIXTURES
    from perception.video import read_image

    for folder in ("with_mask", "without_mask"):
        for name in sorted(os.listdir(os.path.join(FIXTURES, folder))):
            yield read_image(os.path.join(FIXTURES, folder, name))
    from skimage import data

    yield np.ascontiguousarray(data.astronaut()[:, :, ::-1])


def kaggle_images(data: str) -> Iterable[np.ndarray]:
    from perception.kaggle import load_kaggle, load_test_split
    from perception.video import read_image

    for entry in load_kaggle(data, load_test_split()):
        yield read_image(entry.path)


def measure(data: Optional[str] = None) -> Dict[str, Agreement]:
    """Torch MTCNN against ONNX MTCNN, as the pipeline builds them, on the photo sets."""
    from perception.detector import FaceDetector

    torch_mtcnn = FaceDetector(backend="mtcnn", runtime="torch")
    onnx_mtcnn = FaceDetector(backend="mtcnn", runtime="onnx")
    sets: Dict[str, Callable[[], Iterable[np.ndarray]]] = {
        "tests/fixtures photos and the astronaut": fixture_images}
    if data:
        sets["Kaggle test split photos"] = lambda: kaggle_images(data)
    return {name: compare(images(), torch_mtcnn, onnx_mtcnn) for name, images in sets.items()}


def card_section(command: str, digests: Dict[str, str], results: Dict[str, Agreement],
                 models_dir: str = MODELS_DIR) -> str:
    from perception.export import OPSET

    files = ["| `%s` | %.0f kB | %s | `%s` |"
             % (os.path.basename(model_path(stage, models_dir)),
                os.path.getsize(model_path(stage, models_dir)) / 1e3,
                "N x 3 x H x W" if stage == "pnet" else "N x 3 x %d x %d"
                % ((24, 24) if stage == "rnet" else (48, 48)), digests[stage])
             for stage in STAGES]
    rows = ["| %s | %s |" % (name, " | ".join(r.row())) for name, r in results.items()]
    return "\n".join([
        CARD_HEADING, "",
        "The face detector runs without torch too: facenet-pytorch's MTCNN networks (weights "
        "from its\nwheel, `facenet_pytorch/data/{pnet,rnet,onet}.pt`) exported by "
        "`perception/mtcnn_export.py`\n(opset %d, one file each, no external data) and run by "
        "`perception/mtcnn_onnx.py` on onnxruntime\n(`FaceDetector(backend=\"mtcnn\", "
        "runtime=\"onnx\")`), whose numpy steps follow facenet-pytorch 2.6.0's\n"
        "`detect_face`, resampling included (torch's \"area\" interpolation, not "
        "`cv2.INTER_AREA`).\nThis section is written by `%s`." % (OPSET, command), "",
        "| file | size | input | sha256 |", "|---|---|---|---|"] + files + [
        "",
        "Each file's metadata holds its stage (`mtcnn_stage`, checked when it is loaded) and "
        "the sha256\nof the facenet-pytorch weights it was exported from (`source`, "
        "`source_sha256`).", "",
        "Torch MTCNN against ONNX MTCNN (min face 20 px, thresholds 0.6/0.7/0.7, min score "
        "0.9):", "",
        "| photos | " + " | ".join(ROW_HEADER) + " |",
        "|---" * (len(ROW_HEADER) + 1) + "|"] + rows + [""])
