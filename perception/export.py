"""Export the shipped mask classifier (and MTCNN) to ONNX, so that a robot can run without torch.

    python -m perception.export [--weights PT] [--out ONNX] [--data ../shared/datasets]
                                [--models classifier,mtcnn]

MTCNN's three networks go to perception/models/mtcnn_*.onnx, with a model card section of
their own (perception/mtcnn_export.py); they are exported by default only when the classifier
is the shipped one, since ``--weights``/``--out`` are about another classifier.

Writes one self-contained file (``external_data=False``: older OpenCV DNN cannot read split
weights) with a dynamic batch axis, and puts in its metadata what the .pt dict carries beside
the weights (labels, input size, mean/std, light) plus the .pt's name and sha256, so that
``MaskClassifier(runtime="onnx")`` needs nothing else and refuses an export older than its .pt.

Then it measures what the export changed: the same real face crops go through both runtimes
(the faces CenterFace finds in tests/fixtures and, with ``--data``, every labelled face of the
Kaggle test split, perception/kaggle.py), and it prints and writes into the model card the
largest probability difference and how many labels agree. Only the shipped weights' export
rewrites the model card's section; other files are just measured.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import warnings
from typing import Dict, List, Optional, Sequence

import numpy as np

from perception.classifier import (DEFAULT_ONNX, DEFAULT_WEIGHTS, ONNX_METADATA, MaskClassifier,
                                   crop_face)
from common.errors import InputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
MODEL_CARD = os.path.join(os.path.dirname(DEFAULT_WEIGHTS), "MODEL_CARD.md")
#: The model card's section that this command owns: everything from this heading to the
#: next "## " heading (or the end) is rewritten by each export of the shipped weights.
CARD_HEADING = "## ONNX export (the robot's runtime)"
#: ONNX operator set: 17 is read by onnxruntime >= 1.13 and OpenCV DNN >= 4.7.
OPSET = 17
#: Crops per batch when comparing the runtimes.
BATCH = 32


def sha256(path: str) -> str:
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def export(weights_path: str = DEFAULT_WEIGHTS, out_path: str = DEFAULT_ONNX) -> str:
    """Write ``weights_path`` (a classifier .pt) as a one-file ONNX at ``out_path``; returns
    the ONNX file's sha256."""
    classifier = MaskClassifier(weights_path, runtime="torch")
    facts = {"labels": list(classifier.labels), "input_size": classifier.input_size,
             "width_mult": classifier.width_mult, "mean": classifier._mean.tolist(),
             "std": classifier._std.tolist(), "light": classifier.light}
    meta = {key: json.dumps(facts[key]) for key in ONNX_METADATA}
    # The source is named relative to the .onnx, so the check works wherever both are copied.
    meta["source"] = os.path.relpath(os.path.abspath(weights_path),
                                     os.path.dirname(os.path.abspath(out_path)))
    meta["source_sha256"] = sha256(weights_path)
    write_onnx(classifier.model, classifier.input_size, out_path, meta)
    return sha256(out_path)


def write_onnx(module, input_size: int, out_path: str, meta: Dict[str, str]) -> None:
    """Export a torch module taking N x 3 x size x size crops to one ONNX file with ``meta``
    as its metadata (tests use it to make wrong files that look like ours)."""
    import io

    import onnx
    import torch

    buffer = io.BytesIO()
    with warnings.catch_warnings():  # the TorchScript exporter is deprecated, and is the
        # one that needs no onnxscript and gives a plain, OpenCV-readable graph
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), (torch.zeros(1, 3, input_size, input_size),), buffer,
                          dynamo=False, external_data=False, opset_version=OPSET,
                          input_names=["crops"], output_names=["logits"],
                          do_constant_folding=True,
                          dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}})
    model = onnx.load_from_string(buffer.getvalue())
    set_metadata(model, meta)
    onnx.checker.check_model(model)
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    onnx.save_model(model, out_path, save_as_external_data=False)


def set_metadata(model, meta: Dict[str, str]) -> None:
    """Replace an onnx ModelProto's metadata_props with ``meta``."""
    del model.metadata_props[:]
    for key, value in sorted(meta.items()):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value


def fixture_crops() -> List[np.ndarray]:
    """RGB crops of every face CenterFace finds in tests/fixtures (the pipeline's framing)."""
    from perception.detector import FaceDetector
    from perception.video import read_image

    detector = FaceDetector(backend="centerface", min_face_size=None)
    crops = []
    for folder in sorted(os.listdir(FIXTURES)):
        path = os.path.join(FIXTURES, folder)
        if not os.path.isdir(path):
            continue
        for name in sorted(os.listdir(path)):
            image = read_image(os.path.join(path, name))
            for face in detector.detect(image, color="bgr"):
                crops.append(np.ascontiguousarray(crop_face(image, face.box)[:, :, ::-1]))
    return crops


def kaggle_crops(data: str) -> List[np.ndarray]:
    """RGB crops around every labelled face of the Kaggle test split (at least 4 px)."""
    from perception.kaggle import load_kaggle, load_test_split
    from perception.video import read_image

    crops = []
    for entry in load_kaggle(data, load_test_split()):
        image = read_image(entry.path)
        for box, _label in entry.boxes:
            if box[2] - box[0] >= 4 and box[3] - box[1] >= 4:
                crops.append(np.ascontiguousarray(crop_face(image, box)[:, :, ::-1]))
    return crops


def compare(torch_classifier, onnx_classifier, crops: Sequence[np.ndarray]) -> Dict:
    """Largest absolute probability difference and label agreement of two classifiers."""
    worst, same = 0.0, 0
    for start in range(0, len(crops), BATCH):
        batch = list(crops[start:start + BATCH])
        a = torch_classifier.probabilities(batch)
        b = onnx_classifier.probabilities(batch)
        worst = max(worst, float(np.abs(a - b).max()))
        same += int((a.argmax(axis=1) == b.argmax(axis=1)).sum())
    return {"crops": len(crops), "max_abs_diff": worst, "labels_agree": same}


def card_section(command: str, weights_path: str, onnx_path: str, onnx_sha: str,
                 results: Dict[str, Dict]) -> str:
    rows = ["| %s | %d | %d of %d (%.2f%%) | %.2e |"
            % (name, r["crops"], r["labels_agree"], r["crops"],
               100.0 * r["labels_agree"] / max(1, r["crops"]), r["max_abs_diff"])
            for name, r in results.items()]
    return "\n".join([
        CARD_HEADING, "",
        "The robot runs this classifier without torch: `mask_classifier.onnx` is the same "
        "network\nexported by `perception/export.py` and run by onnxruntime (one thread) "
        "through\n`MaskClassifier(runtime=\"onnx\")`. One command writes the export and this "
        "section;\nthe numbers below are its own measurement (`--data` adds the Kaggle "
        "test split).", "",
        "| | |", "|---|---|",
        "| Command | `%s` |" % command,
        "| ONNX file | `%s`, %.1f MB, opset %d, dynamic batch, one file (no external data) |"
        % (os.path.basename(onnx_path), os.path.getsize(onnx_path) / 1e6, OPSET),
        "| ONNX sha256 | `%s` |" % onnx_sha,
        "| Exported from | `%s`, sha256 `%s` |"
        % (os.path.basename(weights_path), sha256(weights_path)),
        "| Metadata | %s, source, source_sha256 (the classifier refuses an export older than "
        "its .pt) |" % ", ".join(ONNX_METADATA), "",
        "Torch against ONNX on the same crops (softmax probabilities):", "",
        "| crops from | faces | same label | largest probability difference |",
        "|---|---|---|---|"] + rows + [""])


def write_card(section: str, card: str = MODEL_CARD) -> None:
    """Put ``section`` in place of the card's section with the same heading (its first line),
    or at the card's end."""
    with open(card, encoding="utf-8") as handle:
        text = handle.read()
    heading = section.split("\n", 1)[0]
    start = text.find(heading)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + ("" if end < 0 else "\n" + text[end + 1:])
    with open(card, "w", encoding="utf-8") as handle:
        handle.write(text)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perception.export",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS, help="default: the shipped .pt")
    parser.add_argument("--out", default=None, help="default: the .pt's name with .onnx")
    parser.add_argument("--data", default=None,
                        help="datasets folder (../shared/datasets): also compare on the Kaggle "
                             "test split's faces")
    parser.add_argument("--models", default=None,
                        help="what to export, of classifier,mtcnn (default: both for the "
                             "shipped classifier, only the classifier with --weights or --out)")
    args = parser.parse_args(argv)
    out = args.out or os.path.splitext(args.weights)[0] + ".onnx"
    shipped = os.path.abspath(args.weights) == os.path.abspath(DEFAULT_WEIGHTS) \
        and os.path.abspath(out) == os.path.abspath(DEFAULT_ONNX)
    models = set((args.models or ("classifier,mtcnn" if shipped else "classifier")).split(","))
    if not models or models - {"classifier", "mtcnn"}:
        parser.error("--models takes classifier, mtcnn or both, got %r" % args.models)
    suffix = " --data %s" % args.data if args.data else ""
    if "classifier" in models and export_classifier(args, out, shipped, suffix) != 0:
        return 2
    if "mtcnn" in models:
        export_mtcnn_and_measure(args.data, "python -m perception.export" + suffix)
    return 0


def export_mtcnn_and_measure(data: Optional[str], command: str) -> None:
    from perception.mtcnn_export import ROW_HEADER, card_section as mtcnn_section
    from perception.mtcnn_export import export_mtcnn, measure

    digests = export_mtcnn()
    for stage, digest in digests.items():
        print("wrote perception/models/mtcnn_%s.onnx (sha256 %s)" % (stage, digest))
    results = measure(data)
    for name, r in results.items():
        print("MTCNN torch vs onnx, %s: %s" % (name, ", ".join(
            "%s %s" % (h, v) for h, v in zip(ROW_HEADER, r.row()))))
    write_card(mtcnn_section(command, digests, results))
    print("updated %s" % MODEL_CARD)


def export_classifier(args, out: str, shipped: bool, suffix: str) -> int:
    """The classifier's export and measurement; 2 on bad input (printed), else 0."""
    try:
        onnx_sha = export(args.weights, out)
        print("wrote %s (%.1f MB, sha256 %s)" % (out, os.path.getsize(out) / 1e6, onnx_sha))
        torch_classifier = MaskClassifier(args.weights, runtime="torch")
        onnx_classifier = MaskClassifier(out, runtime="onnx")
        sets = {"tests/fixtures (faces CenterFace finds)": fixture_crops}
        if args.data:
            sets["Kaggle test split (labelled boxes)"] = lambda: kaggle_crops(args.data)
        results = {}
        for name, crops in sets.items():
            results[name] = compare(torch_classifier, onnx_classifier, crops())
            r = results[name]
            print("%s: %d crops, labels agree on %d, max abs probability difference %.2e"
                  % (name, r["crops"], r["labels_agree"], r["max_abs_diff"]))
    except InputError as exc:
        print("error: %s" % exc, file=sys.stderr)
        return 2
    if shipped:
        command = "python -m perception.export" + suffix
        write_card(card_section(command, args.weights, out, onnx_sha, results))
        print("updated %s" % MODEL_CARD)
    return 0


if __name__ == "__main__":
    sys.exit(main())
