"""Helper of scripts/gazebo_check.sh: the host-side halves of the real-Gazebo check.

``prepare OUT``: for every world, choose camera poses that look at actors' faces from 2.5 m
(robot poses, checked free of walls in the headless simulator), write a copy of the world
with one static camera sensor per pose at the robot camera's place (URDF mount, FOV and
resolution) that saves its frames, and the headless simulator's view of the same poses
(what faces should be seen, and where) as ``OUT/<world>/expected.json`` + PNGs.

``judge OUT``: run FaceDetector (and the classifier, when trained weights are there) on the
frames Gazebo saved, compare with the expectation, write side-by-side images and a report,
and exit non-zero if an expected face was not found.
"""
from __future__ import annotations

import glob
import json
import math
import os
import sys
from typing import Dict, List, Tuple

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

#: Distance from a face at which the check cameras stand, and the simulated time they show.
VIEW_DISTANCE = 2.5
CHECK_TIME = 0.4
MAX_CAMERAS = 4


def choose_poses(name: str) -> List[Tuple[str, Tuple[float, float, float]]]:
    """(actor, robot pose) pairs: the robot 2.5 m in front of an actor, facing them."""
    from sim.simulator import Simulator
    from sim.world import load_world

    world = load_world(name)
    chosen: List[Tuple[str, Tuple[float, float, float]]] = []
    # one actor of each label first, then the rest, up to MAX_CAMERAS
    firsts = []
    for label in ("unmasked", "incorrect", "masked"):
        firsts += [a for a in world.actors if a.label == label][:1]
    order = firsts + [a for a in world.actors if a not in firsts]
    for actor in order:
        if len(chosen) >= MAX_CAMERAS:
            break
        x, y, _, yaw = actor.trajectory.pose_at(CHECK_TIME)
        for side in (0.0, 0.35, -0.35):
            heading = yaw + side
            # stand on the actor's forward axis (or a little to the side), look back at them
            pose = (x + VIEW_DISTANCE * math.cos(heading), y + VIEW_DISTANCE * math.sin(heading),
                    math.atan2(-math.sin(heading), -math.cos(heading)))
            sim = Simulator(name, start=pose)
            clearance, _ = sim.min_clearance()
            while sim.time < CHECK_TIME:
                sim.step(0.02)
            visible = sim.visible_faces()
            sim.close()
            if clearance > 0.05 and actor.name in visible:
                chosen.append((actor.name, pose))
                break
    return chosen


def camera_model_sdf(index: int, pose6, save_dir: str, robot) -> str:
    cam = robot.camera
    return """    <model name="check_camera_%d">
      <static>true</static>
      <pose>%s</pose>
      <link name="link">
        <sensor name="camera" type="camera">
          <always_on>true</always_on>
          <update_rate>5</update_rate>
          <camera>
            <horizontal_fov>%r</horizontal_fov>
            <image>
              <width>%d</width>
              <height>%d</height>
              <format>R8G8B8</format>
            </image>
            <clip>
              <near>%r</near>
              <far>%r</far>
            </clip>
            <save enabled="true">
              <path>%s</path>
            </save>
          </camera>
        </sensor>
      </link>
    </model>
""" % (index, " ".join("%.6f" % v for v in pose6), cam.horizontal_fov, cam.width, cam.height,
       cam.near, cam.far, save_dir)


def prepare(out: str, chroot_out: str) -> int:
    import cv2

    from sim.geometry import compose
    from sim.robot import load_robot
    from sim.scenario import available_worlds
    from sim.simulator import Simulator
    from sim.world import load_world

    robot = load_robot()
    for name in available_worlds():
        world = load_world(name)
        folder = os.path.join(out, name)
        os.makedirs(folder, exist_ok=True)
        poses = choose_poses(name)
        cameras = []
        models = []
        for i, (actor, (x, y, yaw)) in enumerate(poses):
            pose6 = compose((x, y, 0.0, 0.0, 0.0, yaw), robot.camera_pose())
            models.append(camera_model_sdf(i, pose6, "%s/%s/gazebo_%d" % (chroot_out, name, i), robot))
            sim = Simulator(name, start=(x, y, yaw))
            while sim.time < CHECK_TIME:
                sim.step(0.02)
            frame = sim.render_camera()
            cv2.imwrite(os.path.join(folder, "mujoco_%d.png" % i), frame)
            visible = {k: [round(c, 1) for c in v] for k, v in sim.visible_faces().items()}
            labels = {k: world.actor(k).label for k in visible}
            cameras.append({"index": i, "target": actor, "robot_pose": [x, y, yaw],
                            "visible": visible, "labels": labels})
            sim.close()
        with open(world.path) as handle:
            text = handle.read()
        text = text.replace("  </world>", "".join(models) + "  </world>")
        with open(os.path.join(folder, name + "_check.world"), "w") as handle:
            handle.write(text)
        with open(os.path.join(folder, "expected.json"), "w") as handle:
            json.dump({"world": name, "time": CHECK_TIME, "cameras": cameras}, handle, indent=1)
        print("%-12s %d check cameras: %s" % (name, len(cameras), ", ".join(c["target"] for c in cameras)))
    return 0


def _classifier():
    """The trained classifier, or None while only placeholder weights exist."""
    try:
        from perception.classifier import MaskClassifier

        clf = MaskClassifier()
    except Exception as exc:  # no weights yet: the check still tests detection
        print("classifier unavailable (%s): checking detection only" % exc)
        return None
    note = str(clf.metrics.get("note", "")).lower()
    if "random" in note or "throwaway" in note:
        print("classifier weights are a placeholder (%s): checking detection only" % note)
        return None
    return clf


def judge(out: str) -> int:
    import cv2
    import numpy as np

    from perception.classifier import crop_face
    from perception.detector import FaceDetector

    detector = FaceDetector()
    classifier = _classifier()
    failures: List[str] = []
    report: Dict[str, list] = {}
    for expected_path in sorted(glob.glob(os.path.join(out, "*", "expected.json"))):
        with open(expected_path) as handle:
            expected = json.load(handle)
        folder = os.path.dirname(expected_path)
        name = expected["world"]
        for cam in expected["cameras"]:
            i = cam["index"]
            frames = sorted(glob.glob(os.path.join(folder, "gazebo_%d" % i, "*.jpg")))
            frames = [f for f in frames if os.path.getsize(f) > 0]
            if not frames:
                failures.append("%s camera %d: Gazebo saved no frame" % (name, i))
                continue
            # frames are saved at 5 Hz from time 0: take the one nearest the check time
            frame = cv2.imread(frames[min(len(frames) - 1, int(round(expected["time"] * 5)))])
            faces = detector.detect(frame)
            rows = []
            for actor, (u, v, distance) in cam["visible"].items():
                hits = [f for f in faces if f.box[0] <= u <= f.box[2] and f.box[1] - f.height <= v <= f.box[3]]
                label = ""
                if hits and classifier is not None:
                    crop = crop_face(np.ascontiguousarray(frame[:, :, ::-1]), hits[0].box)
                    label = classifier.classify([crop])[0].label
                want = cam["labels"][actor]
                ok = bool(hits) and (not label or label == want or (want != "masked" and label != "masked"))
                rows.append({"actor": actor, "distance": distance, "found": bool(hits),
                             "label": label, "expected_label": want, "ok": ok})
                if distance <= 4.0 and not ok:
                    failures.append("%s camera %d: %s (%s, %.1f m) %s" % (
                        name, i, actor, want, distance, "labelled " + label if hits else "not found"))
            report.setdefault(name, []).append({"camera": i, "faces": rows, "detections": len(faces)})
            side = [frame, cv2.imread(os.path.join(folder, "mujoco_%d.png" % i))]
            for f in faces:
                x1, y1, x2, y2 = (int(c) for c in f.box)
                cv2.rectangle(side[0], (x1, y1), (x2, y2), (0, 255, 0), 2)
            cv2.putText(side[0], "Gazebo 11", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
            cv2.putText(side[1], "MuJoCo", (10, 25), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 255), 2)
            cv2.imwrite(os.path.join(folder, "compare_%d.png" % i), np.hstack(side))
    with open(os.path.join(out, "report.json"), "w") as handle:
        json.dump({"worlds": report, "failures": failures}, handle, indent=1)
    for name, cams in report.items():
        for cam in cams:
            print("%-12s camera %d: %s" % (name, cam["camera"], ", ".join(
                "%s %s%s" % (r["actor"], "found" if r["found"] else "MISSED",
                             " as " + r["label"] if r["label"] else "") for r in cam["faces"])))
    for line in failures:
        print("FAIL " + line)
    print("gazebo check: %d failure(s); images in %s" % (len(failures), out))
    return 1 if failures else 0


def main(argv=None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2 or args[0] not in ("prepare", "judge"):
        print("usage: gazebo_check.py prepare OUT CHROOT_OUT | judge OUT", file=sys.stderr)
        return 2
    if args[0] == "prepare":
        return prepare(args[1], args[2] if len(args) > 2 else args[1])
    return judge(args[1])


if __name__ == "__main__":
    sys.exit(main())
