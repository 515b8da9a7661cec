"""MP4 recording at a constant frame rate in the caller's clock (ROS or simulated time).

Frames from perception or a simulator arrive unevenly; a video whose frames are written
as they come plays too fast or too slow. This writer repeats the newest frame to fill each
1/fps slot, so a video second is a second of the run.
"""
from __future__ import annotations

import os
from typing import Optional

import numpy as np

from common.errors import InputError


class ConstantRateVideoWriter:
    """Writes BGR frames stamped in seconds to an MP4 (OpenCV 'mp4v') at ``fps``; the file
    is created 0600 (and a folder it creates 0700)."""

    #: A gap longer than this (seconds) is not filled frame by frame: the run was paused.
    MAX_FILL_SECONDS = 5.0

    def __init__(self, path: str, fps: float = 10.0) -> None:
        if fps <= 0:
            raise ValueError("fps must be > 0, got %r" % (fps,))
        self.path = path
        self.fps = float(fps)
        self.frames_written = 0
        self._writer = None
        self._size = None
        self._next_stamp: Optional[float] = None
        self._last: Optional[np.ndarray] = None

    def add(self, frame_bgr: np.ndarray, stamp: float) -> None:
        import cv2

        if self._writer is None:
            height, width = frame_bgr.shape[:2]
            directory = os.path.dirname(os.path.abspath(self.path))
            # A camera video shows faces: readable by its owner only, like the snapshots.
            os.makedirs(directory, mode=0o700, exist_ok=True)
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            os.chmod(self.path, 0o600)
            self._writer = cv2.VideoWriter(self.path, cv2.VideoWriter_fourcc(*"mp4v"),
                                           self.fps, (width, height))
            if not self._writer.isOpened():
                raise InputError("cannot write video %s (check the folder is writable)"
                                 % self.path)
            self._size = (width, height)
            self._next_stamp = stamp
        if (frame_bgr.shape[1], frame_bgr.shape[0]) != self._size:
            frame_bgr = cv2.resize(frame_bgr, self._size)
        step = 1.0 / self.fps
        if self._last is not None and stamp - self._next_stamp > self.MAX_FILL_SECONDS:
            self._next_stamp = stamp
        while self._last is not None and self._next_stamp + step <= stamp:
            self._write(self._last)
            self._next_stamp += step
        self._last = frame_bgr
        if self._next_stamp <= stamp:
            self._write(frame_bgr)
            self._next_stamp += step

    def _write(self, frame: np.ndarray) -> None:
        self._writer.write(np.ascontiguousarray(frame, dtype=np.uint8))
        self.frames_written += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
