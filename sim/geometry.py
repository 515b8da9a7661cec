"""Pose math shared by the SDF/URDF loaders and the MuJoCo model builder.

SDF and URDF both write a pose as x y z roll pitch yaw (fixed-axis X-Y-Z, i.e.
R = Rz(yaw) Ry(pitch) Rx(roll)) and nest poses parent-first; MuJoCo wants positions and
(w, x, y, z) quaternions. Keeping the conversions in one place means the simulator places
every box exactly where Gazebo does.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

Pose6 = Tuple[float, float, float, float, float, float]
IDENTITY: Pose6 = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Shape:
    """One primitive: kind 'box' (size = x, y, z), 'cylinder' (radius, length along z),
    'sphere' (radius,) or 'plane' (x, y); ``pose`` is in the owning frame."""

    kind: str
    size: Tuple[float, ...]
    pose: Pose6 = IDENTITY
    rgba: Tuple[float, float, float, float] = (0.6, 0.6, 0.6, 1.0)
    name: str = ""
    #: Image file painted on each face of a box the way Gazebo's box mesh maps a texture
    #: (upright and unmirrored seen from outside); "" for a plain colour.
    texture: str = ""


def rotation_rpy(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """3x3 rotation of SDF/URDF roll-pitch-yaw: Rz(yaw) @ Ry(pitch) @ Rx(roll)."""
    cr, sr = math.cos(roll), math.sin(roll)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cy, sy = math.cos(yaw), math.sin(yaw)
    return np.array([
        [cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr],
        [sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr],
        [-sp, cp * sr, cp * cr],
    ])


def rpy_from_rotation(rot: np.ndarray) -> Tuple[float, float, float]:
    """Inverse of rotation_rpy (pitch in [-pi/2, pi/2])."""
    pitch = math.asin(max(-1.0, min(1.0, -float(rot[2, 0]))))
    roll = math.atan2(float(rot[2, 1]), float(rot[2, 2]))
    yaw = math.atan2(float(rot[1, 0]), float(rot[0, 0]))
    return roll, pitch, yaw


def matrix(pose: Sequence[float]) -> np.ndarray:
    """4x4 homogeneous transform of a 6-number pose."""
    out = np.eye(4)
    out[:3, :3] = rotation_rpy(pose[3], pose[4], pose[5])
    out[:3, 3] = pose[:3]
    return out


def pose_of(transform: np.ndarray) -> Pose6:
    """6-number pose of a 4x4 transform."""
    roll, pitch, yaw = rpy_from_rotation(transform[:3, :3])
    x, y, z = (float(v) for v in transform[:3, 3])
    return (x, y, z, roll, pitch, yaw)


def compose(*poses: Sequence[float]) -> Pose6:
    """The pose of the last frame in the first one's parent: compose(a, b) = a * b."""
    out = np.eye(4)
    for pose in poses:
        out = out @ matrix(pose)
    return pose_of(out)


def quat_wxyz(rot: np.ndarray) -> Tuple[float, float, float, float]:
    """Unit quaternion (w, x, y, z) of a rotation matrix (MuJoCo's order)."""
    m = rot
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 0.5 / math.sqrt(trace + 1.0)
        q = (0.25 / s, (m[2, 1] - m[1, 2]) * s, (m[0, 2] - m[2, 0]) * s, (m[1, 0] - m[0, 1]) * s)
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = ((m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s)
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * math.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = ((m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s)
    else:
        s = 2.0 * math.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = ((m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s)
    norm = math.sqrt(sum(c * c for c in q))
    return tuple(float(c) / norm for c in q)  # type: ignore[return-value]


def quat_of_pose(pose: Sequence[float]) -> Tuple[float, float, float, float]:
    return quat_wxyz(rotation_rpy(pose[3], pose[4], pose[5]))


def parse_numbers(text: str, count: int, what: str) -> Tuple[float, ...]:
    """``count`` floats from whitespace-separated ``text``; ValueError names ``what``."""
    parts = (text or "").split()
    if len(parts) != count:
        raise ValueError("%s: expected %d numbers, got %r" % (what, count, text))
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise ValueError("%s: expected %d numbers, got %r" % (what, count, text)) from None
    if not all(math.isfinite(v) for v in values):
        raise ValueError("%s: numbers must be finite, got %r" % (what, text))
    return values
