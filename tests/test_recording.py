"""The constant-rate video writer: one video second per clock second, and a file that only
its owner can read (a camera video shows faces)."""
from __future__ import annotations

import os
import stat

import cv2
import numpy as np

from perception.recording import ConstantRateVideoWriter


def test_video_fills_each_slot_and_is_readable_by_its_owner_only(tmp_path):
    path = str(tmp_path / "new_folder" / "camera.mp4")
    writer = ConstantRateVideoWriter(path, fps=10.0)
    frame = np.full((48, 64, 3), 120, dtype=np.uint8)
    for stamp in (0.0, 0.35, 1.0):  # uneven arrivals
        writer.add(frame, stamp)
    writer.close()
    assert writer.frames_written == 11  # slots 0.0, 0.1, ..., 1.0
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    video = cv2.VideoCapture(path)
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 11
    video.release()
