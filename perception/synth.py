"""Mask synthesis: draw a face mask onto a real unmasked face from MTCNN's five landmarks.

Why: the training photos have masked and unmasked faces but no face wearing a mask wrongly,
and the masked photos are dominated by a few mask types. Drawing masks onto unmasked faces
gives the ``incorrect`` class (mask under the nose, or on the chin) and more varied
``masked`` examples, on the *same* faces, so the classifier has to look at where the mask
sits rather than at who wears it.

How: a mask (outline, pleats or pattern, shading, ear loops) is drawn once in a canonical
face frame (the 112 px five-point template used for face alignment), then warped onto the
photo with a homography (or an affine fit when the homography is unstable) from the template
landmarks to the detected ones, so the mask follows head roll, scale and some yaw. The
face's own low-frequency lighting is multiplied in so a shadowed cheek gives a shadowed mask.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

#: Five landmarks (left eye, right eye, nose, left and right mouth corner) of the common
#: 112x112 face-alignment template, in the order MTCNN gives them.
TEMPLATE = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                     [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
STYLES: Tuple[str, ...] = ("surgical", "cloth", "patterned", "kn95")
#: correct: over nose and mouth (``masked``); below_nose and chin: ``incorrect``.
PLACEMENTS: Tuple[str, ...] = ("correct", "below_nose", "chin")

# Canvas on which a mask is drawn: canonical units times _SCALE, covering _ORIGIN.._ORIGIN+_SPAN.
_SCALE = 2.0
_ORIGIN = np.array([-24.0, 30.0], np.float32)
_SPAN = 160.0
_CENTER_X = 56.0

_SURGICAL_COLOURS = ((150, 190, 225), (110, 165, 215), (235, 235, 235), (175, 215, 200),
                     (230, 180, 195), (40, 40, 45), (200, 205, 215))
_CLOTH_COLOURS = ((25, 25, 28), (60, 60, 65), (35, 45, 80), (120, 30, 35), (200, 185, 160),
                  (90, 110, 80), (150, 150, 155), (240, 240, 240), (70, 120, 170),
                  (180, 90, 120))
_KN95_COLOURS = ((238, 238, 235), (220, 222, 225), (60, 60, 62), (210, 200, 185))
#: Share of cloth and patterned masks with a printed mouth, grin or cartoon face on them.
MOTIF_RATE = 0.3


def synthesize(image_rgb: np.ndarray, landmarks: Sequence[Sequence[float]],
               placement: str = "correct", style: Optional[str] = None,
               rng: Optional[np.random.RandomState] = None,
               perspective: bool = True, motif_rate: float = MOTIF_RATE
               ) -> Tuple[np.ndarray, np.ndarray]:
    """Return (image with a mask drawn on, per-pixel mask coverage in [0, 1]).

    ``landmarks`` are the five MTCNN points of the face in ``image_rgb`` (RGB uint8).
    ``style`` is one of STYLES (random when None); ``rng`` makes the result repeatable.
    """
    import cv2

    if placement not in PLACEMENTS:
        raise ValueError("placement must be one of %s, got %r" % (PLACEMENTS, placement))
    if style is not None and style not in STYLES:
        raise ValueError("style must be one of %s or None, got %r" % (STYLES, style))
    points = np.asarray(landmarks, np.float32)
    if points.shape != (5, 2) or not np.all(np.isfinite(points)):
        raise ValueError("landmarks must be five finite (x, y) points, got %r" % (landmarks,))
    eye_distance = float(np.linalg.norm(points[1] - points[0]))
    if eye_distance < 4.0:
        raise ValueError("landmarks too close together (eye distance %.1f px) to place a mask"
                         % eye_distance)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.dtype != np.uint8:
        raise ValueError("image_rgb must be an HxWx3 uint8 array, got %s %s"
                         % (image_rgb.shape, image_rgb.dtype))
    rng = rng if rng is not None else np.random.RandomState()
    style = style if style is not None else STYLES[rng.randint(len(STYLES))]

    outline = _outline(style, placement, rng)
    texture, alpha = _draw(style, outline, rng, motif_rate)
    to_image = _fit(points, outline, perspective)
    canvas_to_canon = np.array([[1.0 / _SCALE, 0, _ORIGIN[0]], [0, 1.0 / _SCALE, _ORIGIN[1]],
                                [0, 0, 1]], np.float64)
    warp = to_image @ canvas_to_canon
    height, width = image_rgb.shape[:2]
    texture = cv2.warpPerspective(texture, warp, (width, height), flags=cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    alpha = cv2.warpPerspective(alpha, warp, (width, height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    image = image_rgb.astype(np.float32)
    light = _lighting(image, alpha, eye_distance, rng)
    texture = texture * light[:, :, None]
    texture += rng.normal(0.0, 3.0, texture.shape).astype(np.float32)
    out = alpha[:, :, None] * texture + (1.0 - alpha[:, :, None]) * image
    return np.clip(out, 0, 255).astype(np.uint8), alpha


def _outline(style: str, placement: str, rng: np.random.RandomState) -> np.ndarray:
    """The mask's outline in canonical units, a closed polygon (clockwise from top centre)."""
    top = rng.uniform(57.0, 62.0)
    half = rng.uniform(33.0, 40.0)
    bottom = rng.uniform(117.0, 124.0)
    if style == "surgical":
        right = [(14, 3), (30, 5.5), (half, 8), (half + 1, 30), (half - 4, bottom - top - 15),
                 (half * 0.55, bottom - top - 4)]
    elif style == "kn95":
        right = [(16, 5), (30, 10), (half - 1, 15), (half, 32), (half * 0.75,
                 bottom - top - 12), (half * 0.3, bottom - top - 2)]
    else:
        right = [(13, 2), (27, 6.5), (half - 1, 13), (half + 1, 30), (half - 3,
                 bottom - top - 17), (half * 0.6, bottom - top - 5)]
    centre_bottom = bottom - top + (4.0 if style == "kn95" else 0.0)
    half_outline = [(0.0, 0.0)] + [(float(x), float(y)) for x, y in right]
    points = half_outline + [(0.0, centre_bottom)] + [(-x, y) for x, y in reversed(right)]
    outline = np.array(points, np.float32)
    if style in ("cloth", "patterned"):
        outline = _chaikin(outline, 2)
    if placement == "below_nose":
        top_after = rng.uniform(80.0, 86.0)
    elif placement == "chin":
        top_after = rng.uniform(97.0, 102.0)
        outline[:, 1] *= rng.uniform(0.75, 0.9)  # a mask pulled to the chin bunches up
    else:
        top_after = top
    outline[:, 0] += _CENTER_X
    outline[:, 1] += top_after
    return outline


def _chaikin(points: np.ndarray, rounds: int) -> np.ndarray:
    """Round a closed polygon's corners (Chaikin corner cutting)."""
    for _ in range(rounds):
        following = np.roll(points, -1, axis=0)
        points = np.stack([0.75 * points + 0.25 * following,
                           0.25 * points + 0.75 * following], axis=1).reshape(-1, 2)
    return points


def _to_canvas(points: np.ndarray) -> np.ndarray:
    return ((np.asarray(points, np.float32) - _ORIGIN) * _SCALE)


def _draw(style: str, outline: np.ndarray, rng: np.random.RandomState,
          motif_rate: float = MOTIF_RATE) -> Tuple[np.ndarray, np.ndarray]:
    """Texture (float RGB) and coverage (float 0..1) of the mask on the canonical canvas."""
    import cv2

    size = int(_SPAN * _SCALE)
    poly = np.round(_to_canvas(outline) * 4).astype(np.int32)  # 2 bits of sub-pixel accuracy
    alpha = np.zeros((size, size), np.float32)
    cv2.fillPoly(alpha, [poly], 1.0, lineType=cv2.LINE_AA, shift=2)
    top = float(outline[:, 1].min())
    bottom = float(outline[:, 1].max())
    left, right = float(outline[:, 0].min()), float(outline[:, 0].max())
    xs = (np.arange(size, dtype=np.float32) / _SCALE + _ORIGIN[0])
    ys = (np.arange(size, dtype=np.float32) / _SCALE + _ORIGIN[1])
    u = np.clip((xs - _CENTER_X) / max(1.0, (right - left) / 2.0), -1.0, 1.0)[None, :]
    v = np.clip((ys - top) / max(1.0, bottom - top), 0.0, 1.0)[:, None]

    if style == "surgical":
        colour = np.array(_SURGICAL_COLOURS[rng.randint(len(_SURGICAL_COLOURS))], np.float32)
    elif style == "kn95":
        colour = np.array(_KN95_COLOURS[rng.randint(len(_KN95_COLOURS))], np.float32)
    else:
        colour = np.array(_CLOTH_COLOURS[rng.randint(len(_CLOTH_COLOURS))], np.float32)
    colour = np.clip(colour * rng.uniform(0.85, 1.1) + rng.uniform(-12, 12, 3), 0, 255)
    texture = np.ones((size, size, 3), np.float32) * colour

    if style == "patterned":
        texture = _pattern(size, colour, rng)
    if style in ("cloth", "patterned") and rng.rand() < motif_rate:
        _print_motif(texture, top, bottom, rng)
    # Fabric grain, then the curvature of a mask around a face: darker towards the sides,
    # a little darker at the bottom, a random side lit more than the other.
    grain = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 1.2)
    texture *= (1.0 + 0.05 * grain)[:, :, None]
    shade = (1.0 - rng.uniform(0.2, 0.45) * u ** 2) * (1.0 - rng.uniform(0.0, 0.15) * v) \
        * (1.0 + rng.uniform(-0.15, 0.15) * u)
    if style == "kn95":
        fold = rng.uniform(0.82, 0.95)
        shade = shade * np.where(u < 0, fold, 1.0 / fold * 0.98)
    texture *= shade[:, :, None]

    line = max(1, int(round(_SCALE * 1.0)))
    if style == "surgical":
        for fraction in (0.32, 0.5, 0.68):
            y = top + fraction * (bottom - top) * rng.uniform(0.92, 1.08)
            pts = np.array([[x, y + 1.5 * ((x - _CENTER_X) / 40.0) ** 2]
                            for x in np.linspace(left + 2, right - 2, 12)])
            dark = tuple(float(c) for c in colour * 0.72)
            light = tuple(float(min(255.0, c * 1.12)) for c in colour)
            cv2.polylines(texture, [np.round(_to_canvas(pts)).astype(np.int32)], False, dark,
                          line, cv2.LINE_AA)
            cv2.polylines(texture, [np.round(_to_canvas(pts + [0, 1.2])).astype(np.int32)],
                          False, light, line, cv2.LINE_AA)
        # the binding along the edges
        edge = tuple(float(c) for c in colour * 0.85)
        cv2.polylines(texture, [np.round(_to_canvas(outline)).astype(np.int32)], True, edge,
                      int(_SCALE * 2.5), cv2.LINE_AA)
    elif style == "kn95":
        seam = np.array([[_CENTER_X, top], [_CENTER_X, bottom]])
        cv2.polylines(texture, [np.round(_to_canvas(seam)).astype(np.int32)], False,
                      tuple(float(c) for c in colour * 0.7), line, cv2.LINE_AA)
    elif rng.rand() < 0.5:
        seam = np.array([[_CENTER_X, top], [_CENTER_X + 1, (top + bottom) / 2],
                         [_CENTER_X, bottom]])
        cv2.polylines(texture, [np.round(_to_canvas(seam)).astype(np.int32)], False,
                      tuple(float(c) for c in colour * 0.6), line, cv2.LINE_AA)

    if rng.rand() < 0.6:  # ear loops run from the mask's corners towards the ears
        loop_colour = colour if rng.rand() < 0.5 else np.array([235.0, 235.0, 235.0])
        thick = max(1, int(round(_SCALE * rng.uniform(0.6, 1.2))))
        for sign in (-1.0, 1.0):
            side = _CENTER_X + sign * (right - _CENTER_X) * 0.97
            ear = _CENTER_X + sign * 60.0
            for start_y, end_y in ((top + 6, 66.0), (bottom - 14, 74.0)):
                pts = np.array([[side, start_y], [(side + ear) / 2, (start_y + end_y) / 2 + 2],
                                [ear, end_y]])
                canvas_pts = np.round(_to_canvas(pts)).astype(np.int32)
                cv2.polylines(texture, [canvas_pts], False,
                              tuple(float(c) for c in loop_colour * 0.9), thick, cv2.LINE_AA)
                cv2.polylines(alpha, [canvas_pts], False, 0.9, thick, cv2.LINE_AA)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 0.8 * _SCALE / 2.0)
    return texture, alpha


def _print_motif(texture: np.ndarray, top: float, bottom: float,
                 rng: np.random.RandomState) -> None:
    """Print lips, a toothy grin, a smile or a cartoon face on the mask, in place.

    Novelty masks with a mouth printed on them are common, and the simulator's `masked_3`
    actors wear one. A classifier that has only seen plain masks reads a small printed
    mouth as a real one and alerts on a masked person; these teach it that a mouth drawn on
    fabric that covers the nose is still a mask."""
    import cv2

    height = bottom - top
    cx = _CENTER_X + rng.uniform(-3.0, 3.0)
    cy = top + height * rng.uniform(0.45, 0.62)
    width = rng.uniform(22.0, 36.0)  # a real mouth is about 29 template units wide
    ink = rng.uniform(0, 255, 3)
    if rng.rand() < 0.5:
        ink = np.array([rng.uniform(120, 220), rng.uniform(10, 60), rng.uniform(20, 70)])
    ink_t = tuple(float(c) for c in ink)
    line = max(1, int(round(_SCALE * rng.uniform(1.5, 3.5))))

    def canvas(x: float, y: float) -> Tuple[int, int]:
        return tuple(int(round(v)) for v in _to_canvas([[x, y]])[0])  # type: ignore

    def axes(a: float, b: float) -> Tuple[int, int]:
        return int(round(a * _SCALE)), int(round(b * _SCALE))

    kind = rng.randint(4)
    if kind == 0:  # lips
        cv2.ellipse(texture, canvas(cx, cy), axes(width / 2, width / 5), 0, 0, 360, ink_t, -1,
                    cv2.LINE_AA)
        cv2.line(texture, canvas(cx - width / 2, cy), canvas(cx + width / 2, cy),
                 tuple(float(c) for c in ink * 0.5), line, cv2.LINE_AA)
    elif kind == 1:  # open grin with teeth
        cv2.ellipse(texture, canvas(cx, cy - 2), axes(width / 2, width / 3), 0, 0, 180,
                    (40.0, 20.0, 25.0), -1, cv2.LINE_AA)
        teeth = (np.array([cx - width / 2.4, cy - 2]), np.array([cx + width / 2.4, cy + width / 9]))
        cv2.rectangle(texture, canvas(*teeth[0]), canvas(*teeth[1]), (240.0, 240.0, 235.0), -1)
    elif kind == 2:  # a smile
        cv2.ellipse(texture, canvas(cx, cy - 4), axes(width / 2, width / 4), 0, 10, 170, ink_t,
                    line, cv2.LINE_AA)
    else:  # a cartoon face: two eyes and a smile
        for side in (-1.0, 1.0):
            cv2.circle(texture, canvas(cx + side * width / 4, cy - width / 3),
                       int(round(_SCALE * width / 9)), ink_t, -1, cv2.LINE_AA)
        cv2.ellipse(texture, canvas(cx, cy), axes(width / 2.5, width / 5), 0, 0, 180, ink_t,
                    line, cv2.LINE_AA)


def _pattern(size: int, colour: np.ndarray, rng: np.random.RandomState) -> np.ndarray:
    """A printed fabric: stripes, dots, checks or blobs in two or three colours."""
    import cv2

    other = rng.uniform(0, 255, 3).astype(np.float32)
    third = rng.uniform(0, 255, 3).astype(np.float32)
    kind = rng.randint(4)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(10, 30) * _SCALE / 3.0
    if kind == 0:
        angle = rng.uniform(0, np.pi)
        phase = (xx * np.cos(angle) + yy * np.sin(angle)) / period
        chosen = (np.floor(phase) % 2 == 0)
    elif kind == 1:
        chosen = ((np.floor(xx / period) + np.floor(yy / period)) % 2 == 0)
    elif kind == 2:
        cx = (xx % period) - period / 2
        cy = (yy % period) - period / 2
        chosen = (cx ** 2 + cy ** 2) < (period * rng.uniform(0.2, 0.35)) ** 2
    else:
        blobs = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0),
                                 period / 2)
        chosen = blobs > 0
    texture = np.where(chosen[:, :, None], other, colour).astype(np.float32)
    if rng.rand() < 0.4:
        speck = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0),
                                 period / 4) > 1.0
        texture[speck] = third
    return texture


def _fit(points: np.ndarray, outline: np.ndarray, perspective: bool) -> np.ndarray:
    """3x3 map from canonical units to image pixels: a homography through the five landmarks
    when it is stable, else a least-squares affine fit."""
    import cv2

    ones = np.ones((5, 1), np.float32)
    solution, _, _, _ = np.linalg.lstsq(np.hstack([TEMPLATE, ones]), points, rcond=None)
    affine = np.vstack([solution.T, [0.0, 0.0, 1.0]]).astype(np.float64)
    if not perspective:
        return affine
    homography, _ = cv2.findHomography(TEMPLATE, points, 0)
    if homography is None:
        return affine
    probe = np.hstack([outline, np.ones((len(outline), 1), np.float32)]).astype(np.float64)
    by_affine = (affine @ probe.T).T
    warped = (homography @ probe.T).T
    if np.any(warped[:, 2] <= 1e-6):
        return affine
    warped = warped[:, :2] / warped[:, 2:3]
    eye_distance = float(np.linalg.norm(points[1] - points[0]))
    if np.max(np.linalg.norm(warped - by_affine[:, :2], axis=1)) > 0.35 * eye_distance:
        return affine
    return homography


def _lighting(image: np.ndarray, alpha: np.ndarray, eye_distance: float,
              rng: np.random.RandomState) -> np.ndarray:
    """The face's own slow light changes, normalised to 1 under the mask."""
    import cv2

    gray = image.mean(axis=2)
    blurred = cv2.GaussianBlur(gray, (0, 0), max(1.0, 0.3 * eye_distance))
    weight = alpha.sum()
    reference = float((blurred * alpha).sum() / weight) if weight > 1e-3 else float(gray.mean())
    ratio = np.clip(blurred / max(reference, 1.0), 0.5, 1.5)
    return ratio ** rng.uniform(0.3, 0.8)
