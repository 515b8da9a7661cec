"""Frames from wherever a user points a tool: an image, a folder of images, a video, a webcam.

The CLIs take one INPUT argument and must treat each kind right: photos are unrelated to
each other (so tracking restarts for each), video and webcam frames are a sequence. Every
way an input can be wrong becomes an InputError naming the input and the fix.
"""
from __future__ import annotations

import os
from typing import Iterator, List, Optional, Tuple

import numpy as np

from common.errors import InputError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")


def is_image_path(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_images(folder: str, recursive: bool = False) -> List[str]:
    """Image files in ``folder`` (sorted; optionally all subfolders), or InputError if none."""
    if not os.path.isdir(folder):
        raise InputError("%s is not a folder; pass a folder of images" % folder)
    found = []
    if recursive:
        for root, dirs, files in os.walk(folder):
            dirs.sort()
            found.extend(os.path.join(root, f) for f in files if is_image_path(f))
    else:
        found = [os.path.join(folder, f) for f in os.listdir(folder) if is_image_path(f)]
    found.sort()
    if not found:
        raise InputError("folder %s holds no images (%s)%s; point the tool at a folder of "
                         "images" % (folder, ", ".join(IMAGE_EXTENSIONS),
                                     " in any subfolder" if recursive else ""))
    return found


def read_image(path: str) -> np.ndarray:
    """Read an image file as BGR uint8, or raise InputError saying what is wrong with it."""
    import cv2

    if not os.path.exists(path):
        raise InputError("image %s does not exist; check the path" % path)
    if os.path.isdir(path):
        raise InputError("%s is a folder, expected an image file" % path)
    data = np.fromfile(path, dtype=np.uint8)  # cv2.imread mangles some non-ASCII names
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise InputError("cannot read image %s: it is empty or not an image OpenCV can decode "
                         "(use JPEG, PNG, BMP, WebP or TIFF)" % path)
    return image


class FrameSource:
    """Iterates ``(name, frame_bgr)`` over one input; ``kind`` says what the input was.

    kinds: 'image' (one photo), 'folder' (unrelated photos, sorted by name), 'video' (a
    video file) and 'webcam' (a camera index such as ``0``). ``is_sequence`` is True for
    the last two: consecutive frames show the same people, so tracking across them helps.
    """

    def __init__(self, spec: str, max_frames: Optional[int] = None) -> None:
        self.spec = str(spec)
        self.max_frames = max_frames
        self.fps = 30.0
        self.size: Optional[Tuple[int, int]] = None
        self._capture = None
        self._paths: List[str] = []
        if self.spec.isdigit():
            self.kind = "webcam"
            self._open_capture(int(self.spec),
                               "cannot open webcam %s; check it is connected and that "
                               "/dev/video%s is readable" % (self.spec, self.spec))
        elif not os.path.exists(self.spec):
            raise InputError("input %s does not exist; pass an image, a folder of images, a "
                             "video file or a webcam index such as 0" % self.spec)
        elif os.path.isdir(self.spec):
            self.kind = "folder"
            self._paths = list_images(self.spec)
        elif is_image_path(self.spec):
            self.kind = "image"
            self._paths = [self.spec]
            read_image(self.spec)  # a broken photo fails now, before models load
        elif self.spec.lower().endswith(VIDEO_EXTENSIONS):
            self.kind = "video"
            self._open_capture(self.spec,
                               "cannot open video %s: it is empty, damaged or in a format "
                               "OpenCV cannot decode; convert it to MP4 (e.g. with ffmpeg)"
                               % self.spec)
        else:
            self.kind = "video"
            self._open_capture(self.spec,
                               "cannot read %s: it is neither an image (%s) nor a video "
                               "OpenCV can open; pass an image, a folder, a video or a webcam "
                               "index" % (self.spec, ", ".join(IMAGE_EXTENSIONS)))

    @property
    def is_sequence(self) -> bool:
        return self.kind in ("video", "webcam")

    def _open_capture(self, target, message: str) -> None:
        import cv2

        # OpenCV and FFmpeg log their own warnings for a missing camera or an undecodable
        # file; our InputError says it once, so keep them quiet while opening. (FFmpeg
        # reads its level once, when OpenCV first opens a file; a user's setting wins.)
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
        level = cv2.getLogLevel()
        cv2.setLogLevel(0)
        try:
            capture = cv2.VideoCapture(target)
        finally:
            cv2.setLogLevel(level)
        if not capture.isOpened():
            capture.release()
            raise InputError(message)
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise InputError(message)
        fps = capture.get(cv2.CAP_PROP_FPS)
        if fps and 1.0 <= fps <= 240.0:
            self.fps = float(fps)
        self.size = (first.shape[1], first.shape[0])
        self._capture = capture
        self._first = first

    def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
        count = 0
        if self._capture is None:
            for path in self._paths:
                if self.max_frames is not None and count >= self.max_frames:
                    return
                yield path, read_image(path)
                count += 1
            return
        frame = self._first
        try:
            while frame is not None:
                if self.max_frames is not None and count >= self.max_frames:
                    return
                yield "frame%06d" % count, frame
                count += 1
                ok, frame = self._capture.read()
                if not ok:
                    frame = None
        finally:
            self.close()

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def open_video_writer(path: str, fps: float, size: Tuple[int, int]):
    """An OpenCV 'mp4v' writer for BGR frames of ``size`` (width, height), or InputError."""
    import cv2

    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), float(fps), tuple(size))
    if not writer.isOpened():
        raise InputError("cannot write video %s; check the folder is writable and the name "
                         "ends in .mp4" % path)
    return writer
