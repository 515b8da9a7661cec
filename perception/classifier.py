"""Mask classification: torchvision MobileNetV2 over face crops, three classes (types.LABELS).

The weights file is a ``torch.save`` dict written by ``perception.train``::

    {"arch": "mobilenet_v2", "width_mult": float, "input_size": int,
     "labels": ["masked", "unmasked", "incorrect"], "mean": [..3], "std": [..3],
     "light": "none" | "clahe", "state_dict": {...}, "metrics": {...}}

so a file carries everything needed to rebuild its network; loading checks each part and
names the file when something is wrong.

The robot runs the same network without torch: ``python -m perception.export`` writes it to
``mask_classifier.onnx`` with the same facts in the ONNX file's metadata, and
``MaskClassifier(runtime="onnx")`` runs that file with onnxruntime; the preprocessing is numpy
and OpenCV in both runtimes, so neither imports the other's framework.
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import InputError
from perception.types import LABELS, Box, Classification

#: The weights that ship with the package (trained by perception.train, see its model card).
DEFAULT_WEIGHTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models",
                               "mask_classifier.pt")
#: The shipped classifier exported to ONNX (``python -m perception.export`` writes it).
DEFAULT_ONNX = os.path.splitext(DEFAULT_WEIGHTS)[0] + ".onnx"
#: Where the network runs: "torch" (the .pt, needs torch and torchvision) or "onnx" (the
#: exported .onnx on onnxruntime, no torch: the robot's install).
RUNTIMES = ("torch", "onnx")
#: How much context around the detector's box goes into a crop (fraction of box size).
CROP_MARGIN = 0.15
#: Ways a crop's lighting is evened out before the network sees it ("light" in a weights
#: file; files written before it existed mean "none").
LIGHT_CHOICES = ("none", "clahe")


def equalize_light(image_rgb: np.ndarray) -> np.ndarray:
    """Contrast-limited histogram equalisation of the lightness (CIE L*) of a resized crop.

    A backlit or underexposed face is a dark patch whose shape the network cannot see; local
    equalisation brings out the mouth and nose whatever the exposure, while the colours (a
    blue mask, skin) are kept. Training and inference both call this on the network-sized
    image, so the two see the same thing."""
    import cv2

    lab = cv2.cvtColor(image_rgb, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4)).apply(
        np.ascontiguousarray(lab[:, :, 0]))
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


def apply_light(image_rgb: np.ndarray, light: str) -> np.ndarray:
    """The network-sized image as a weights file's ``light`` setting asks (LIGHT_CHOICES);
    the one place that training and MaskClassifier both go through."""
    return equalize_light(image_rgb) if light == "clahe" else image_rgb


def build_model(width_mult: float = 1.0, num_classes: int = len(LABELS)):
    """A torchvision MobileNetV2 with ``num_classes`` outputs and random weights."""
    from torchvision.models import mobilenet_v2

    if not 0.1 <= width_mult <= 2.0:
        raise ValueError("width_mult must be in [0.1, 2.0], got %r" % (width_mult,))
    return mobilenet_v2(weights=None, width_mult=width_mult, num_classes=num_classes)


def crop_square(box: Box, margin: float = CROP_MARGIN) -> Tuple[int, int, int]:
    """Where crop_face cuts: (left, top, side) in image pixels (may reach past the borders).

    Separate so that tools which paint onto the crop (Grad-CAM overlays) can put the
    result back in the right place.
    """
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    side = max(side, 4.0)
    return int(round(cx - side / 2.0)), int(round(cy - side / 2.0)), int(round(side))


def crop_face(image_rgb: np.ndarray, box: Box, margin: float = CROP_MARGIN) -> np.ndarray:
    """Cut a square crop around ``box`` (plus ``margin``), padding with edge pixels at borders.

    Square crops keep the face's aspect ratio when resized; the same function cuts training
    crops and live crops, so the classifier sees the same framing in both.
    """
    left, top, size = crop_square(box, margin)
    height, width = image_rgb.shape[:2]
    pad = max(0, -left, -top, left + size - width, top + size - height)
    if pad:
        image_rgb = np.pad(image_rgb, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        left, top = left + pad, top + pad
    return image_rgb[top:top + size, left:left + size]


class MaskClassifier:
    """Labels face crops masked / unmasked / incorrect with a trained MobileNetV2.

    ``runtime`` is one of RUNTIMES; ``weights_path`` is that runtime's file (default: the
    shipped ``mask_classifier.pt`` for torch, ``mask_classifier.onnx`` for onnx). Given a
    ``.pt``, the onnx runtime runs its export beside it (``X.pt`` -> ``X.onnx``), so one
    weights setting serves both runtimes. Both give the same labels (the export measures it,
    see the model card); the onnx runtime uses one onnxruntime thread and never imports torch.

    ``flip_average`` averages each crop's probabilities with those of its mirror image, in the
    same batch. Why: a face's label does not depend on its side, but the network's errors
    do. On the Kaggle test split (faces >= 12 px) it turned 4 of 15 false alerts on masked
    faces and 2 of 13 missed masks below the nose right, and broke none (model card, "Mirror
    average"); it costs one more crop per face in the batch.
    """

    def __init__(self, weights_path: Optional[str] = None, device: str = "cpu",
                 runtime: str = "torch", flip_average: bool = True) -> None:
        if runtime not in RUNTIMES:
            raise ValueError("runtime must be one of %s, got %r" % (", ".join(RUNTIMES), runtime))
        self.runtime = runtime
        self.flip_average = bool(flip_average)
        if runtime == "onnx":
            self.weights_path = onnx_path_for(weights_path)
            self._session, checkpoint = load_onnx(self.weights_path)
            self.device = device
            self.model = None
        else:
            self.weights_path = os.path.abspath(weights_path or DEFAULT_WEIGHTS)
            checkpoint = load_checkpoint(self.weights_path)
        self.labels: Tuple[str, ...] = tuple(checkpoint["labels"])
        self.input_size = int(checkpoint["input_size"])
        self.width_mult = float(checkpoint["width_mult"])
        self.metrics: Dict = dict(checkpoint.get("metrics", {}))
        self._mean = np.asarray(checkpoint.get("mean", (0.5, 0.5, 0.5)), dtype=np.float32)
        self._std = np.asarray(checkpoint.get("std", (0.5, 0.5, 0.5)), dtype=np.float32)
        self.light = str(checkpoint.get("light", "none"))
        if runtime == "torch":
            self._build_torch(checkpoint, device)

    def _build_torch(self, checkpoint: Dict, device: str) -> None:
        import torch

        self.device = torch.device(device)
        self.model = build_model(self.width_mult, len(self.labels))
        try:
            self.model.load_state_dict(checkpoint["state_dict"])
        except RuntimeError as exc:
            raise InputError(
                "%s does not hold MobileNetV2 weights of width %.2f for %d classes (%s); "
                "retrain with `python -m perception.train` or pass the right file"
                % (self.weights_path, self.width_mult, len(self.labels),
                   str(exc).splitlines()[0])) from None
        self.model.eval().to(self.device)

    def preprocess_array(self, crops_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Resize, even out the light and normalise RGB uint8 crops: one NCHW float32 array.

        numpy and OpenCV only, so that both runtimes see exactly the same input."""
        import cv2

        batch = np.empty((len(crops_rgb), self.input_size, self.input_size, 3), np.float32)
        for i, crop in enumerate(crops_rgb):
            if crop.ndim != 3 or crop.shape[2] != 3 or crop.size == 0:
                raise InputError("a face crop must be a non-empty HxWx3 RGB image, got shape %s"
                                 % (crop.shape,))
            # shrink by area, enlarge smoothly: INTER_AREA enlarges like nearest neighbour, and
            # the blocky pixels of a small face were read as "masked" (training crops are
            # enlarged with INTER_LINEAR, see perception.data)
            interpolation = (cv2.INTER_AREA if max(crop.shape[:2]) > self.input_size
                             else cv2.INTER_LINEAR)
            resized = cv2.resize(crop, (self.input_size, self.input_size),
                                 interpolation=interpolation)
            batch[i] = apply_light(resized, self.light).astype(np.float32) / 255.0
        batch = (batch - self._mean) / self._std
        return np.ascontiguousarray(batch.transpose(0, 3, 1, 2))

    def preprocess(self, crops_rgb: Sequence[np.ndarray]):
        """preprocess_array as a torch tensor on the classifier's device (torch runtime)."""
        import torch

        return torch.from_numpy(self.preprocess_array(crops_rgb)).to(self.device)

    def probabilities(self, crops_rgb: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities of RGB crops in one batch: an N x len(labels) float array
        (with ``flip_average``, the mean of each crop's and its mirror image's)."""
        batch = self.preprocess_array(crops_rgb)
        count = len(batch)
        if self.flip_average:
            batch = np.ascontiguousarray(np.concatenate([batch, batch[:, :, :, ::-1]]))
        probabilities = self._network_probabilities(batch)
        if self.flip_average:
            probabilities = (probabilities[:count] + probabilities[count:]) / 2.0
        return probabilities

    def _network_probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Softmax of the network's logits for one preprocessed NCHW batch."""
        if self.runtime == "onnx":
            logits = self._session.run(None, {self._session.get_inputs()[0].name: batch})[0]
            logits = logits - logits.max(axis=1, keepdims=True)
            exp = np.exp(logits.astype(np.float64))
            return exp / exp.sum(axis=1, keepdims=True)
        import torch

        with torch.no_grad():
            logits = self.model(torch.from_numpy(batch).to(self.device))
            return torch.softmax(logits, dim=1).cpu().numpy()

    def classify(self, crops_rgb: Sequence[np.ndarray]) -> List[Classification]:
        """Classify RGB crops in one batch; returns one Classification per crop, in order."""
        if len(crops_rgb) == 0:
            return []
        results = []
        for row in self.probabilities(crops_rgb):
            best = int(np.argmax(row))
            results.append(Classification(label=self.labels[best], score=float(row[best]),
                                          probabilities=tuple(float(p) for p in row)))
        return results


def load_checkpoint(path: str) -> Dict:
    """Read a classifier weights file, with an error naming the file for each way it can fail."""
    import torch

    if not os.path.isfile(path):
        raise InputError("classifier weights %s do not exist; train them with "
                         "`python -m perception.train` or pass --weights PATH" % path)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, pickle garbage, wrong format
        raise InputError("classifier weights %s cannot be read (%s: %s); the file is truncated "
                         "or not a mask_patrol weights file, retrain or re-check it out"
                         % (path, type(exc).__name__, str(exc).splitlines()[0] if str(exc) else ""))
    needed = ("arch", "width_mult", "input_size", "labels", "state_dict")
    if not isinstance(checkpoint, dict) or any(k not in checkpoint for k in needed):
        raise InputError("%s is not a mask_patrol classifier file (needs keys %s); "
                         "retrain with `python -m perception.train`" % (path, ", ".join(needed)))
    if checkpoint["arch"] != "mobilenet_v2":
        raise InputError("%s holds a %r network, expected 'mobilenet_v2'"
                         % (path, checkpoint["arch"]))
    if tuple(checkpoint["labels"]) != LABELS:
        raise InputError("%s was trained for labels %s, expected %s"
                         % (path, list(checkpoint["labels"]), list(LABELS)))
    if checkpoint.get("light", "none") not in LIGHT_CHOICES:
        raise InputError("%s asks for light normalisation %r, this version knows %s; "
                         "update mask_patrol or retrain" % (path, checkpoint["light"],
                                                            ", ".join(LIGHT_CHOICES)))
    return checkpoint


#: What the ONNX file's metadata must say (``perception.export`` writes it): the facts a .pt
#: carries in its dict, as JSON strings.
ONNX_METADATA = ("labels", "input_size", "width_mult", "mean", "std", "light")
_EXPORT_FIX = "re-export it with `python -m perception.export`"


def onnx_path_for(weights_path: Optional[str]) -> str:
    """The ONNX file the onnx runtime runs for ``weights_path`` (None: the shipped one; a
    .pt: its export beside it, which must exist)."""
    if not weights_path:
        return DEFAULT_ONNX
    path = os.path.abspath(weights_path)
    if not os.path.isfile(path):
        raise InputError("weights file %s does not exist; make one with `python -m "
                         "perception.train` (and `python -m perception.export` for the onnx "
                         "runtime), or leave weights unset for the shipped model" % path)
    if not path.endswith(".pt"):
        return path
    onnx_path = path[:-len(".pt")] + ".onnx"
    if not os.path.isfile(onnx_path):
        raise InputError("the onnx runtime runs %s, the export of %s, which does not exist; "
                         "export it with `python -m perception.export --weights %s`"
                         % (onnx_path, path, weights_path))
    return onnx_path


def load_onnx(path: str):
    """An onnxruntime session (one thread) on an exported classifier, and its facts as a dict.

    Each way the file can be wrong raises InputError naming it: missing, unreadable, without
    the export's metadata, a graph whose input is not N x 3 x size x size or whose output is
    not N x len(LABELS), or older than the .pt it was exported from (a retrained .pt beside it).
    """
    import json

    from perception.onnx_session import one_thread_session

    session = one_thread_session(path, "ONNX classifier", _EXPORT_FIX)
    meta = session.get_modelmeta().custom_metadata_map
    missing = [key for key in ONNX_METADATA if key not in meta]
    if missing:
        raise InputError("%s lacks the metadata %s that perception.export writes; %s"
                         % (path, ", ".join(missing), _EXPORT_FIX))
    try:
        facts = {key: json.loads(meta[key]) for key in ONNX_METADATA}
    except ValueError as exc:
        raise InputError("%s has unreadable metadata (%s); %s" % (path, exc, _EXPORT_FIX)) from None
    if tuple(facts["labels"]) != LABELS:
        raise InputError("%s was exported for labels %s, expected %s; %s"
                         % (path, facts["labels"], list(LABELS), _EXPORT_FIX))
    if facts["light"] not in LIGHT_CHOICES:
        raise InputError("%s asks for light normalisation %r, this version knows %s"
                         % (path, facts["light"], ", ".join(LIGHT_CHOICES)))
    size = int(facts["input_size"])
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or list(inputs[0].shape[1:]) != [3, size, size]:
        raise InputError("%s takes input %s, but its metadata and the classifier's crops are "
                         "N x 3 x %d x %d; %s" % (path, [i.shape for i in inputs], size, size,
                                                  _EXPORT_FIX))
    if len(outputs) != 1 or list(outputs[0].shape[1:]) != [len(LABELS)]:
        raise InputError("%s gives output %s, expected N x %d (%s); %s"
                         % (path, [o.shape for o in outputs], len(LABELS), ", ".join(LABELS),
                            _EXPORT_FIX))
    _check_source(path, meta)
    return session, facts


def _check_source(path: str, meta: Dict[str, str]) -> None:
    """Refuse an export older than the .pt beside it: a retrained .pt must be re-exported,
    or the robot would run other weights than the ones the model card describes."""
    import hashlib

    source = os.path.join(os.path.dirname(path), meta.get("source", ""))
    if not meta.get("source") or not os.path.isfile(source):
        return
    with open(source, "rb") as handle:
        digest = hashlib.sha256(handle.read()).hexdigest()
    if digest != meta.get("source_sha256"):
        raise InputError("%s was exported from another %s (sha256 %s..., the file now has "
                         "%s...); %s" % (path, meta["source"], meta.get("source_sha256", "")[:12],
                                         digest[:12], _EXPORT_FIX))
