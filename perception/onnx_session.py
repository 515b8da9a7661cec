"""One way to open an ONNX model for the robot: onnxruntime on the CPU, one thread.

Why one thread: on the robot's small computer the networks share two cores with the tree,
the tracker and the camera driver, and onnxruntime's default (a thread per core) makes
them fight (see DESIGN.md, "Threads"). Why here: every exported network (the classifier,
MTCNN's three stages) is opened the same way and refused the same way when its file is
missing or unreadable, with the file named and the fix given.
"""
from __future__ import annotations

import os

from common.errors import InputError


def one_thread_session(path: str, what: str, fix: str):
    """An onnxruntime session on ``path``; InputError "``what`` ``path`` ...; ``fix``" when
    the file is missing or cannot be loaded (protobuf garbage, truncated, invalid graph)."""
    import onnxruntime

    if not os.path.isfile(path):
        raise InputError("%s %s does not exist; %s" % (what, path, fix))
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    try:
        return onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / ... types
        raise InputError("%s %s cannot be read (%s: %s); %s"
                         % (what, path, type(exc).__name__, " ".join(str(exc).split())[:200],
                            fix)) from None
