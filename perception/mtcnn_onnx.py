"""MTCNN without torch: facenet-pytorch's three networks as ONNX files, and its pipeline in numpy.

Why: the robot's install has no torch (README, "A robot without torch"), but MTCNN is the
detector the scenario suite certifies. ``python -m perception.export`` writes facenet-pytorch's
P-, R- and O-net as ``perception/models/mtcnn_{pnet,rnet,onet}.onnx``; this module runs them on
onnxruntime (one thread each) with the same steps as facenet-pytorch 2.6.0's ``detect_face``:
an image pyramid (factor 0.709 from ``12 / min_face_size``), P-net proposals with NMS per
scale and over all scales, R-net and O-net on square crops, box regression, and O-net's five
landmarks. The aim is the same boxes, not a better detector: ``tests/test_mtcnn_onnx.py`` and
``bench/same_answers.py`` compare the two.

Two details decide the agreement, so they follow facenet-pytorch rather than OpenCV habit:

- Resampling is torch's ``interpolate(mode="area")``, i.e. adaptive average pooling: output
  pixel i averages input pixels ``floor(i*n/m)`` to ``ceil((i+1)*n/m) - 1`` with equal
  weights (``AreaResampler``). ``cv2.INTER_AREA`` weighs fractional pixels instead and turns
  bilinear when it enlarges (R-net's 24 px crops of small faces): with it, 15 of the 17
  faces in tests/fixtures and the astronaut kept their box (IoU >= 0.9), against 17 of 17.
- Crops are the clipped box, stretched to 24 or 48 px (facenet-pytorch does not zero-pad
  boxes that leave the image, as the original MTCNN does).
"""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from common.errors import InputError

MODELS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "models")
#: The three networks, in the order they run.
STAGES = ("pnet", "rnet", "onet")
#: Each network's input side (None: P-net takes any size) and output names, as exported.
INPUT_SIDE = {"pnet": None, "rnet": 24, "onet": 48}
OUTPUTS = {"pnet": ["reg", "prob"], "rnet": ["reg", "prob"],
           "onet": ["reg", "landmarks", "prob"]}
INPUT_NAME = "images"
#: facenet-pytorch's MTCNN default: each pyramid level is 0.709 times the one before.
FACTOR = 0.709
_EXPORT_FIX = "run `python -m perception.export` (in the full install, .venv) to write it"


def model_path(stage: str, models_dir: Optional[str] = None) -> str:
    """Where the export writes, and the detector reads, one stage's ONNX file."""
    return os.path.join(models_dir or MODELS_DIR, "mtcnn_%s.onnx" % stage)


def load_stage(stage: str, path: str):
    """A one-thread onnxruntime session on ``path``; InputError (naming the file and the fix)
    if it is missing, unreadable, or not the export of this stage."""
    from perception.onnx_session import one_thread_session

    session = one_thread_session(path, "MTCNN's %s model" % stage, _EXPORT_FIX)
    found = session.get_modelmeta().custom_metadata_map.get("mtcnn_stage")
    inputs = [(i.name, i.shape[1:]) for i in session.get_inputs()]
    side = INPUT_SIDE[stage]
    want_in = [(INPUT_NAME, [3, side, side])] if side else None
    outputs = [o.name for o in session.get_outputs()]
    if found != stage or outputs != OUTPUTS[stage] or len(inputs) != 1 \
            or inputs[0][0] != INPUT_NAME or (want_in and inputs != want_in):
        raise InputError("%s is not MTCNN's %s as perception.export writes it (stage %r, inputs "
                         "%s, outputs %s); %s" % (path, stage, found, inputs, outputs,
                                                  _EXPORT_FIX))
    return session


def pooling_bins(size_in, size_out: int) -> Tuple[np.ndarray, np.ndarray]:
    """Adaptive average pooling's bins: output i averages inputs start[i]..end[i]-1.
    ``size_in`` may be an array of sizes (one row of bins each)."""
    i = np.arange(size_out)
    n = np.asarray(size_in)[..., None]
    return (i * n) // size_out, -((-(i + 1) * n) // size_out)


class AreaResampler:
    """torch's ``interpolate(mode="area")`` of one H x W x 3 image, or of windows of it.

    A summed-area table (``cv2.integral``, float64: exact for 8-bit images), made once per
    image, gives the sum of any rectangle from four look-ups, so every pyramid level and
    every batch of crops is four vectorised gathers.
    """

    def __init__(self, image: np.ndarray) -> None:
        import cv2

        self.height, self.width = image.shape[:2]
        self._table = cv2.integral(image, sdepth=cv2.CV_64F).reshape(-1, image.shape[2])

    def resize(self, height: int, width: int) -> np.ndarray:
        """The whole image at height x width, float32."""
        return self.crops(np.array([[0, 0, self.width, self.height]]), height, width)[0]

    def crops(self, windows: np.ndarray, height: int, width: int) -> np.ndarray:
        """K windows (x1, y1, x2, y2 slice bounds) at height x width: K x height x width x 3."""
        x1, y1, x2, y2 = (windows[:, k:k + 1] for k in range(4))
        top, bottom = pooling_bins(y2[:, 0] - y1[:, 0], height)
        left, right = pooling_bins(x2[:, 0] - x1[:, 0], width)
        stride = self.width + 1  # the table's row length
        top, bottom = (top + y1)[:, :, None] * stride, (bottom + y1)[:, :, None] * stride
        left, right = (left + x1)[:, None, :], (right + x1)[:, None, :]
        t = self._table
        sums = t[bottom + right] - t[top + right] - t[bottom + left] + t[top + left]
        count = ((bottom - top) // stride) * (right - left)
        return (sums / count[..., None]).astype(np.float32)


def area_resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize H x W x C as torch's ``interpolate(mode="area")`` does (see AreaResampler)."""
    return AreaResampler(image).resize(height, width)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, by_min: bool = False
        ) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first.

    Default: torchvision's ``nms`` (overlap = IoU of x2-x1 by y2-y1 areas, suppress > t;
    ties kept in input order, as torch's stable CPU sort does). ``by_min``: facenet-pytorch's
    final numpy NMS (+1 pixel areas, overlap over the smaller box, keep <= t, numpy's own
    argsort order).
    """
    if len(boxes) == 0:
        return np.zeros(0, dtype=np.int64)
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    pad = 1.0 if by_min else 0.0
    area = (x2 - x1 + pad) * (y2 - y1 + pad)
    order = np.argsort(scores)[::-1] if by_min else np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + pad)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + pad)
        inter = w * h
        if by_min:
            order = rest[inter / np.minimum(area[i], area[rest]) <= threshold]
        else:
            order = rest[inter / (area[i] + area[rest] - inter) <= threshold]
    return np.asarray(keep, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Grow each box to a square around its centre (MTCNN's ``rerec``), in place."""
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    boxes[:, 0] += w * 0.5 - side * 0.5
    boxes[:, 1] += h * 0.5 - side * 0.5
    boxes[:, 2] = boxes[:, 0] + side
    boxes[:, 3] = boxes[:, 1] + side
    return boxes


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Shift box edges by the networks' offsets in units of the +1 pixel size (``bbreg``)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    boxes[:, :4] += offsets[:, :4] * np.stack([w, h, w, h], axis=1)
    return boxes


class MTCNNOnnx:
    """facenet-pytorch's ``MTCNN.detect`` on onnxruntime: RGB image in, (N x 4 boxes, N scores,
    N x 5 x 2 landmarks) out, in the image's pixels.

    ``min_face_size``, ``thresholds`` and ``factor`` mean what they mean in facenet-pytorch.
    ``models_dir`` holds the three ``mtcnn_*.onnx`` (default: perception/models).
    """

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = FACTOR, models_dir: Optional[str] = None) -> None:
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.sessions: Dict[str, object] = {
            stage: load_stage(stage, model_path(stage, models_dir)) for stage in STAGES}

    def _run(self, stage: str, images: np.ndarray) -> List[np.ndarray]:
        """One network on N x H x W x 3 float32 pixels (0-255), normalised as MTCNN wants."""
        batch = ((images - 127.5) * 0.0078125).transpose(0, 3, 1, 2)
        return self.sessions[stage].run(None, {INPUT_NAME: np.ascontiguousarray(batch)})

    def scales(self, height: int, width: int) -> List[float]:
        """The pyramid: from 12 / min_face_size down while the short side is >= 12 px."""
        scale = 12.0 / self.min_face_size
        short = min(height, width) * scale
        found = []
        while short >= 12:
            found.append(scale)
            scale *= self.factor
            short *= self.factor
        return found

    def __call__(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        image = AreaResampler(rgb)
        boxes = self._propose(image)
        if len(boxes):
            boxes = self._refine(image, boxes)
        if not len(boxes):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        return self._output(image, boxes)

    def _propose(self, image: AreaResampler) -> np.ndarray:
        """P-net over the pyramid: rows of x1 y1 x2 y2 score, regressed and squared."""
        height, width = image.height, image.width
        found = []
        for scale in self.scales(height, width):
            small = image.resize(int(height * scale + 1), int(width * scale + 1))
            reg, prob = self._run("pnet", small[None])
            ys, xs = np.nonzero(prob[0, 1] >= self.thresholds[0])
            # Each P-net output cell is a 12 px window at stride 2 of the scaled image.
            cell = np.stack([xs, ys], axis=1).astype(np.float32)
            scale32 = np.float32(scale)
            rows = np.concatenate([np.floor((2 * cell + 1) / scale32),
                                   np.floor((2 * cell + 12) / scale32),
                                   prob[0, 1, ys, xs][:, None], reg[0][:, ys, xs].T], axis=1)
            found.append(rows[nms(rows[:, :4], rows[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        rows = np.concatenate(found)
        rows = rows[nms(rows[:, :4], rows[:, 4], 0.7)]
        # P-net's offsets are in units of the box size without the +1 pixel.
        w, h = rows[:, 2] - rows[:, 0], rows[:, 3] - rows[:, 1]
        boxes = rows[:, :4] + rows[:, 5:9] * np.stack([w, h, w, h], axis=1)
        return square(np.concatenate([boxes, rows[:, 4:5]], axis=1))

    def _crops(self, image: AreaResampler, boxes: np.ndarray, side: int
               ) -> Tuple[np.ndarray, np.ndarray]:
        """Each box's pixels (clipped to the image, not padded) at side x side; and the
        indices of the boxes that had any pixel in the image."""
        height, width = image.height, image.width
        corners = np.trunc(boxes[:, :4]).astype(np.int64)
        x1, y1 = np.maximum(corners[:, 0], 1), np.maximum(corners[:, 1], 1)
        x2, y2 = np.minimum(corners[:, 2], width), np.minimum(corners[:, 3], height)
        kept = np.nonzero((x2 > x1 - 1) & (y2 > y1 - 1))[0]
        windows = np.stack([x1 - 1, y1 - 1, x2, y2], axis=1)[kept]
        return image.crops(windows, side, side), kept

    def _refine(self, image: AreaResampler, boxes: np.ndarray) -> np.ndarray:
        """R-net: score and regress the proposals; NMS; square again."""
        crops, kept = self._crops(image, boxes, 24)
        if not len(kept):
            return boxes[:0]
        reg, prob = self._run("rnet", crops)
        passed = prob[:, 1] > self.thresholds[1]
        boxes = np.concatenate([boxes[kept][passed, :4], prob[passed, 1:2]], axis=1)
        reg = reg[passed]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        return square(regress(boxes[pick], reg[pick]))

    def _output(self, image: AreaResampler, boxes: np.ndarray
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """O-net: final scores, box regression, landmarks; NMS by the smaller box."""
        crops, kept = self._crops(image, boxes, 48)
        if not len(kept):
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        reg, points, prob = self._run("onet", crops)
        passed = prob[:, 1] > self.thresholds[2]
        boxes = np.concatenate([boxes[kept][passed, :4], prob[passed, 1:2]], axis=1)
        reg, points = reg[passed], points[passed]
        # Landmarks are fractions of the box before regression (+1 pixel sizes, 1-based).
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = w * points[:, :5] + boxes[:, 0:1] - 1
        ys = h * points[:, 5:] + boxes[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=2)
        boxes = regress(boxes, reg)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, by_min=True)
        return (boxes[pick, :4].astype(np.float64), boxes[pick, 4].astype(np.float64),
                landmarks[pick].astype(np.float64))
