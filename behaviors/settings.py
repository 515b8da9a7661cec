"""patrol_node's settings, read one way from one file: ``config/patrol.yaml`` in the ROS
package, loaded by every launch file, with the launch file's own few keys on top.

The scenario suite certifies the robot only if the simulator runs the robot's settings, so
there is one YAML file (``SETTINGS_FILE``), not a default per launch file, node and
library. ``read_settings`` splits a parameter mapping three ways:

- ``PerceptionSettings``: how the frame pipeline is built (detector, scale, ...);
- ``behaviors.config.Config``: every number of the behaviour tree;
- ``NodeSettings``: what a launch file owns (the route, the output folder, the topics) and
  how the node keeps face data (retention, blurring bystanders).

Any other key stops the node at start-up with its name: a misspelt setting must never
silently keep a default.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import Any, Dict, Mapping, Optional, Tuple

from behaviors.config import Config
from common.errors import InputError

#: The settings file in the ROS package (catkin_ws/src/mask_patrol/config/patrol.yaml).
SETTINGS_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                             "catkin_ws", "src", "mask_patrol", "config", "patrol.yaml")


@dataclass(frozen=True)
class PerceptionSettings:
    """How patrol_node builds its perception pipeline (perception.pipeline.FramePipeline)."""

    #: Classifier weights file; "" = the shipped model.
    weights: str = ""
    #: Run the face detector on every N-th frame; KCF carries the faces in between.
    detect_every: int = 5
    #: Smallest face the detector looks for, in full-frame pixels.
    min_face_size: int = 20
    #: Frame scale for detection and KCF (boxes are always reported at full size).
    detect_scale: float = 1.0
    #: The face detector (perception.detector.DETECTORS): "mtcnn" or "centerface".
    detector: str = "mtcnn"
    #: centerface only: enlarge the frame the detector sees (after detect_scale), to find
    #: small faces.
    detector_upscale: float = 1.0
    #: How the networks run (perception.classifier.RUNTIMES): "torch", or "onnx" (the
    #: classifier's exported file beside the weights and, for "mtcnn", MTCNN's exports in
    #: perception/models, on onnxruntime; the node then needs no torch with either detector,
    #: see the robot install in the README). onnx is the default: the same answers as
    #: torch (bench/same_answers.py), a quarter of the memory and faster on one thread.
    runtime: str = "onnx"

    def __post_init__(self) -> None:
        if not isinstance(self.weights, str):
            raise ValueError("weights must be a file path or \"\", got %r" % (self.weights,))
        for name in ("detect_every", "min_face_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError("%s must be an integer >= 1, got %r" % (name, value))
        if isinstance(self.detect_scale, bool) or not isinstance(self.detect_scale, (int, float)) \
                or not 0.05 <= self.detect_scale <= 1.0:
            raise ValueError("detect_scale must be a number in [0.05, 1], got %r"
                             % (self.detect_scale,))
        from perception.detector import DETECTORS

        if self.detector not in DETECTORS:
            raise ValueError("detector must be one of %s, got %r"
                             % (", ".join(DETECTORS), self.detector))
        from perception.classifier import RUNTIMES

        if self.runtime not in RUNTIMES:
            raise ValueError("runtime must be one of %s, got %r"
                             % (", ".join(RUNTIMES), self.runtime))
        if isinstance(self.detector_upscale, bool) \
                or not isinstance(self.detector_upscale, (int, float)) \
                or not 1.0 <= self.detector_upscale <= 4.0:
            raise ValueError("detector_upscale must be a number in [1, 4], got %r"
                             % (self.detector_upscale,))

    def build_pipeline(self, horizontal_fov: Optional[float] = None) -> Any:
        """The pipeline these settings describe (loads the models: seconds)."""
        from perception.pipeline import FramePipeline

        return FramePipeline.default(weights_path=self.weights or None,
                                     detect_every=self.detect_every,
                                     min_face_size=self.min_face_size, scale=self.detect_scale,
                                     horizontal_fov=horizontal_fov, detector=self.detector,
                                     detector_upscale=self.detector_upscale,
                                     runtime=self.runtime)


@dataclass(frozen=True)
class NodeSettings:
    """What a launch file owns: the route, where records go, how the camera is read."""

    #: YAML file with a 'waypoints' list of {x, y} (the real robot's route).
    waypoints: str = ""
    #: A world name (or .world / .yaml path) whose scenario YAML holds the route.
    scenario: str = ""
    #: Subscribe camera/image_raw/compressed (sensor_msgs/CompressedImage) instead.
    compressed: bool = False
    #: The alert store ("" = ~/.ros/mask_patrol/alerts.sqlite).
    alert_db: str = ""
    #: Snapshot folder ("" = beside the alert store).
    snapshot_dir: str = ""
    #: Event log, JSON lines ("" = events.jsonl beside the alert store).
    event_log: str = ""
    #: Days an alert's face and frame snapshots are kept; older ones are purged (recorded
    #: in the store's events) when the node starts. 0 keeps them forever.
    retention_days: float = 30.0
    #: Blur the faces that raised no alert in frame snapshots and in the annotated camera
    #: topic (and so the recorded video). Turn off only to debug perception.
    blur_bystanders: bool = True


PERCEPTION_KEYS = tuple(f.name for f in fields(PerceptionSettings))
NODE_KEYS = tuple(f.name for f in fields(NodeSettings))
#: The node's settings that are the same wherever it runs, so they live in the settings
#: file; the other NODE_KEYS are what a launch file owns.
FACE_DATA_KEYS = ("retention_days", "blur_bystanders")
TREE_KEYS = tuple(f.name for f in fields(Config) if f.name != "waypoints")


def load_settings_file(path: str = SETTINGS_FILE) -> Dict[str, Any]:
    """The settings file as a flat mapping; InputError names the file when it is unusable."""
    import yaml

    try:
        with open(path) as handle:
            values = yaml.safe_load(handle)
    except OSError as exc:
        raise InputError("cannot read the settings file %s (%s); it belongs in the ROS "
                         "package's config/ folder" % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise InputError("settings file %s is not valid YAML: %s" % (path, exc))
    if not isinstance(values, dict):
        raise InputError("settings file %s must hold a mapping of setting: value, got %s"
                         % (path, type(values).__name__))
    return values


def read_settings(params: Mapping[str, Any], base: Optional[Mapping[str, Any]] = None
                  ) -> Tuple[Config, PerceptionSettings, NodeSettings]:
    """Split ``params`` (ROS private params) over ``base`` (the settings file's values)
    into the three kinds of settings; unknown keys raise ValueError naming them.

    The route comes from ``waypoints`` (a YAML file) or else ``scenario`` (a world's
    scenario YAML), read here so the tree starts with it.
    """
    values: Dict[str, Any] = dict(base or {})
    values.update(params)
    known = set(PERCEPTION_KEYS) | set(NODE_KEYS) | set(TREE_KEYS)
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError("unknown setting(s) %s; the settings are those of %s, plus the "
                         "launch file's own %s" % (", ".join(unknown), SETTINGS_FILE,
                                                   ", ".join(NODE_KEYS)))
    node = NodeSettings(**{k: values[k] for k in NODE_KEYS if k in values})
    if isinstance(node.blur_bystanders, str) or isinstance(node.compressed, str):
        raise ValueError("blur_bystanders and compressed must be true or false, got %r, %r"
                         % (node.blur_bystanders, node.compressed))
    perception = PerceptionSettings(**{k: values[k] for k in PERCEPTION_KEYS if k in values})
    tree: Dict[str, Any] = {k: values[k] for k in TREE_KEYS if k in values}
    if node.waypoints:
        from behaviors.waypoints import load_waypoints

        tree["waypoints"] = load_waypoints(node.waypoints)
    elif node.scenario:
        # The scenario YAML beside the world is the one description of the route.
        from sim.scenario import load_scenario

        tree["waypoints"] = load_scenario(node.scenario).waypoints
    return Config.from_dict(tree), perception, node
