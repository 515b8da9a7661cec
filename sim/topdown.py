"""A top-down map of a world: walls and boxes, people coloured by the face they show, the
robot with its camera's field of view, its trail and the patrol route.

Drawn with OpenCV from the loaded world rather than rendered in 3D: a map is read at a
glance (who is where, which way they face, what the robot can see) and costs ~1 ms. The
static part is drawn once; each frame only adds the moving things.
"""
from __future__ import annotations

import math
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from sim.geometry import Shape
from sim.world import World

#: BGR colour per face label (what the classifier should say).
LABEL_COLOURS = {
    "masked": (60, 170, 60),
    "unmasked": (40, 40, 220),
    "incorrect": (0, 150, 255),
}
FLOOR = (235, 235, 232)
WALL = (95, 95, 95)
ROUTE = (200, 160, 120)
ROBOT = (160, 60, 20)
TRAIL = (210, 120, 60)


class TopDownMap:
    """Draws a world from above at ``pixels_per_metre`` (chosen to fit ``max_size``).

    ``camera_fov`` (radians) is the robot camera's, from the robot model: the map draws
    what the camera can see."""

    def __init__(self, world: World, camera_fov: float, robot_radius: float = 0.2,
                 view_range: float = 4.0,
                 max_size: int = 640, margin: int = 16) -> None:
        if max_size < 64:
            raise ValueError("max_size must be >= 64 px, got %r" % (max_size,))
        if robot_radius <= 0 or view_range <= 0 or not 0 < camera_fov < math.pi:
            raise ValueError("robot_radius and view_range must be > 0 and camera_fov in (0, pi), "
                             "got %r, %r, %r" % (robot_radius, view_range, camera_fov))
        self.world = world
        self.robot_radius = robot_radius
        self.camera_fov = camera_fov
        self.view_range = view_range
        x0, x1, y0, y1 = world.bounds()
        self.scale = (max_size - 2 * margin) / max(x1 - x0, y1 - y0, 1.0)
        self.width = int(math.ceil((x1 - x0) * self.scale)) + 2 * margin
        self.height = int(math.ceil((y1 - y0) * self.scale)) + 2 * margin + 22
        self._origin = (x0, y1)
        self._margin = margin
        left, top = self.to_pixel(x0, y1)
        right, bottom = self.to_pixel(x1, y0)
        self._floor = ((max(0, left), max(0, top)), (min(self.width, right + 1), min(self.height, bottom + 1)))
        self._background = self._draw_static()

    def to_pixel(self, x: float, y: float) -> Tuple[int, int]:
        """World metres to image pixels (x right, y up on the map)."""
        return (int(round(self._margin + (x - self._origin[0]) * self.scale)),
                int(round(self._margin + (self._origin[1] - y) * self.scale)))

    def draw(self, robot_pose: Optional[Tuple[float, float, float]],
             actor_poses: Dict[str, Tuple[float, float, float]],
             trail: Sequence[Tuple[float, float]] = (), sim_time: Optional[float] = None,
             caption: str = "") -> np.ndarray:
        """A BGR image of the world with the robot and actors at the given poses."""
        import cv2

        image = self._background.copy()
        if len(trail) > 1:
            pts = np.array([self.to_pixel(x, y) for x, y in trail], dtype=np.int32)
            cv2.polylines(image, [pts], False, TRAIL, 2, cv2.LINE_AA)
        labels = {a.name: a.label for a in self.world.actors}
        person = max(3, int(round(0.25 * self.scale)))
        for name, (x, y, yaw) in sorted(actor_poses.items()):
            colour = LABEL_COLOURS.get(labels.get(name, ""), (128, 128, 128))
            centre = self.to_pixel(x, y)
            cv2.circle(image, centre, person, colour, -1, cv2.LINE_AA)
            tip = self.to_pixel(x + 0.45 * math.cos(yaw), y + 0.45 * math.sin(yaw))
            cv2.line(image, centre, tip, colour, 2, cv2.LINE_AA)
            cv2.putText(image, name, (centre[0] + person + 2, centre[1] - person), cv2.FONT_HERSHEY_SIMPLEX,
                        0.4, (40, 40, 40), 1, cv2.LINE_AA)
        if robot_pose is not None:
            x, y, yaw = robot_pose
            wedge = [self.to_pixel(x, y)]
            for k in range(9):
                a = yaw - self.camera_fov / 2 + self.camera_fov * k / 8
                wedge.append(self.to_pixel(x + self.view_range * math.cos(a), y + self.view_range * math.sin(a)))
            overlay = image.copy()
            cv2.fillPoly(overlay, [np.array(wedge, dtype=np.int32)], (120, 200, 240), cv2.LINE_AA)
            blended = cv2.addWeighted(overlay, 0.35, image, 0.65, 0)
            (left, top), (right, bottom) = self._floor  # the view ends at the map's edge
            image[top:bottom, left:right] = blended[top:bottom, left:right]
            centre = self.to_pixel(x, y)
            radius = max(3, int(round(self.robot_radius * self.scale)))
            cv2.circle(image, centre, radius, ROBOT, -1, cv2.LINE_AA)
            nose = 1.5 * self.robot_radius
            tip = self.to_pixel(x + nose * math.cos(yaw), y + nose * math.sin(yaw))
            cv2.line(image, centre, tip, (255, 255, 255), 2, cv2.LINE_AA)
        text = self.world.name
        if sim_time is not None:
            text += "   t = %6.1f s" % sim_time
        if caption:
            text += "   " + caption
        cv2.putText(image, text, (self._margin, self.height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45,
                    (30, 30, 30), 1, cv2.LINE_AA)
        return image

    def _draw_static(self) -> np.ndarray:
        import cv2

        image = np.full((self.height, self.width, 3), 255, dtype=np.uint8)
        x0, x1, y0, y1 = self.world.bounds()
        cv2.rectangle(image, self.to_pixel(x0, y1), self.to_pixel(x1, y0), FLOOR, -1)
        for model in self.world.models:
            for shape in model.collisions:
                self._fill_shape(image, shape, WALL)
        route = self.world.scenario.waypoints
        if route:
            pts = np.array([self.to_pixel(x, y) for x, y in route], dtype=np.int32)
            cv2.polylines(image, [pts], self.world.scenario.loop, ROUTE, 1, cv2.LINE_AA)
            for p in pts:
                cv2.circle(image, (int(p[0]), int(p[1])), 3, ROUTE, -1, cv2.LINE_AA)
        # legend
        x = self._margin + 210
        for label, colour in LABEL_COLOURS.items():
            cv2.circle(image, (x, self.height - 12), 5, colour, -1, cv2.LINE_AA)
            cv2.putText(image, label, (x + 8, self.height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.4,
                        (30, 30, 30), 1, cv2.LINE_AA)
            x += 90
        return image

    def _fill_shape(self, image: np.ndarray, shape: Shape, colour) -> None:
        import cv2

        x, y, yaw = shape.pose[0], shape.pose[1], shape.pose[5]
        if shape.kind == "box":
            hx, hy = shape.size[0] / 2.0, shape.size[1] / 2.0
            c, s = math.cos(yaw), math.sin(yaw)
            corners = [(x + c * dx - s * dy, y + s * dx + c * dy)
                       for dx, dy in ((-hx, -hy), (hx, -hy), (hx, hy), (-hx, hy))]
            cv2.fillPoly(image, [np.array([self.to_pixel(*p) for p in corners], dtype=np.int32)], colour)
        elif shape.kind in ("cylinder", "sphere"):
            cv2.circle(image, self.to_pixel(x, y), max(1, int(round(shape.size[0] * self.scale))), colour, -1)
