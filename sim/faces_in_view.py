"""Ground truth for perception: where each actor's face plate appears in the robot camera.

The alert store knows a person only as a box in an image; to say *which* actor an alert
was about (and whether the robot kept that face near the image centre while following),
the run's trace records, for every actor whose face plate is in front of the camera and
turned towards it, the pixel position and pixel height the camera sees it at.
"""
from __future__ import annotations

import math
from typing import Dict, List

import numpy as np

from sim.geometry import compose, matrix

#: Height of the face box a detector draws, as a share of the face plate's height: the
#: textures are cut so the face fills 70 % of the plate (worlds/tools/make_face_textures.py),
#: the rest is hair, forehead and background.
FACE_SHARE_OF_PLATE = 0.7


def face_plates(world) -> Dict[str, object]:
    """Actor name -> the Shape that carries its face texture."""
    plates = {}
    for actor in world.actors:
        for shape in actor.visuals:
            if shape.texture and shape.texture == actor.face_texture:
                plates[actor.name] = shape
                break
    return plates


def faces_in_view(sim, plates=None) -> Dict[str, List[float]]:
    """Actor -> [u, v, face box height in px, depth in m] for faces the camera can see.

    A face counts when its centre projects inside the image and the plate's front normal
    (the actor's forward axis) points towards the camera; occlusion is not modelled.
    """
    plates = plates if plates is not None else face_plates(sim.world)
    fx, fy, cx, cy = sim.camera_intrinsics()
    width, height = 2.0 * cx, 2.0 * cy
    cam_pos, _ = sim.camera_pose()
    out: Dict[str, List[float]] = {}
    t = sim.time
    for actor in sim.world.actors:
        shape = plates.get(actor.name)
        if shape is None:
            continue
        x, y, z, yaw = actor.trajectory.pose_at(t)
        pose = matrix(compose((x, y, z, 0.0, 0.0, yaw), shape.pose))
        centre = pose[:3, 3]
        forward = pose[:3, 0]
        to_camera = np.asarray(cam_pos) - centre
        if float(np.dot(forward, to_camera)) <= 0.0:
            continue  # seen from behind or edge-on
        seen = sim.project(centre)
        if seen is None:
            continue
        u, v, depth = seen
        if not (0.0 <= u < width and 0.0 <= v < height):
            continue
        plate_height = shape.size[2] if len(shape.size) >= 3 else 0.2
        out[actor.name] = [round(u, 1), round(v, 1),
                           round(fy * FACE_SHARE_OF_PLATE * plate_height / max(depth, 1e-3), 1),
                           round(depth, 3)]
    return out


def bearing_error(u: float, width: float) -> float:
    """Horizontal offset from the image centre as a fraction of half the width (edge = 1)."""
    half = width / 2.0
    return (u - half) / half if half > 0 else math.nan
