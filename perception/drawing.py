"""Annotating frames for people: boxes coloured by class, label, score, track id, fps.

Used by the CLIs, the recorded demo video and the ROS debug image, so all three look the
same. Colours follow traffic-light intuition: masked green, unmasked red, mask worn wrong
orange; a face not classified yet is grey, and a face KCF has lost is drawn thin.
"""
from __future__ import annotations

from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from perception.types import FrameResult, Track

#: BGR colour per label.
COLORS: Dict[str, Tuple[int, int, int]] = {
    "masked": (0, 180, 0),
    "unmasked": (0, 0, 230),
    "incorrect": (0, 140, 255),
}
UNKNOWN_COLOR = (160, 160, 160)


def color_for(label: str) -> Tuple[int, int, int]:
    """The BGR colour drawn for ``label`` (grey for anything not in COLORS)."""
    return COLORS.get(label, UNKNOWN_COLOR)


def track_caption(track: Track) -> str:
    """The text drawn above a box, e.g. ``#3 unmasked 0.92``."""
    return "#%d %s %.2f" % (track.track_id, track.label, track.score)


def draw_tracks(frame_bgr: np.ndarray, tracks: Sequence[Track], fps: Optional[float] = None,
                copy: bool = True) -> np.ndarray:
    """Draw every track (box, caption, landmarks) and an optional fps line on a BGR frame."""
    import cv2

    image = frame_bgr.copy() if copy else frame_bgr
    height, width = image.shape[:2]
    thick = max(1, int(round(min(width, height) / 240.0)))
    font_scale = max(0.4, min(width, height) / 800.0)
    for track in tracks:
        color = color_for(track.label)
        x1, y1, x2, y2 = (int(round(v)) for v in track.box)
        cv2.rectangle(image, (x1, y1), (x2, y2), color,
                      1 if track.lost_frames else thick + 1, cv2.LINE_AA)
        for px, py in track.landmarks:
            cv2.circle(image, (int(round(px)), int(round(py))), thick + 1, color, -1,
                       cv2.LINE_AA)
        text = track_caption(track)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        ty = y1 - 4 if y1 - th - base - 4 >= 0 else min(height - base, y2 + th + 4)
        tx = max(0, min(x1, width - tw - 4))  # keep the caption inside the frame
        cv2.rectangle(image, (tx, ty - th - base), (tx + tw + 4, ty + base // 2), color, -1)
        cv2.putText(image, text, (tx + 2, ty - base // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    font_scale, (255, 255, 255), thick, cv2.LINE_AA)
    if fps is not None:
        _outlined_text(image, "%.1f fps" % fps, (8, 8 + int(24 * font_scale / 0.6)),
                       font_scale * 1.2, thick)
    return image


def draw_result(frame_bgr: np.ndarray, result: FrameResult, fps: Optional[float] = None,
                copy: bool = True) -> np.ndarray:
    """``draw_tracks`` for a pipeline FrameResult."""
    return draw_tracks(frame_bgr, result.tracks, fps=fps, copy=copy)


def _outlined_text(image: np.ndarray, text: str, origin: Tuple[int, int], scale: float,
                   thick: int) -> None:
    """White text with a black outline: readable on any background."""
    import cv2

    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thick + 2,
                cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thick,
                cv2.LINE_AA)
