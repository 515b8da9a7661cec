"""Load a Gazebo world (SDF 1.6) and its scenario YAML into plain dataclasses, and check them.

The world file is real Gazebo Classic SDF: static models (walls, boxes, ``<include>``d
models from ``worlds/models``), a directional light, and ``<actor>``s whose links carry box
visuals and a face plate textured through an OGRE material script. This module reads the
subset those worlds use and refuses the rest with a message that names the file and the
element, so a world that the simulator accepts is one it can reproduce faithfully.

Each actor's label (masked / unmasked / incorrect) is read from its face material's name,
``MaskPatrol/Face_<label>_<n>``: the face the camera sees and the label the tests expect come
from the same line of SDF. The scenario's expected alerts are then checked against it.

Nothing here imports MuJoCo; ``sim.mjcf`` turns a ``World`` into a MuJoCo model.
"""
from __future__ import annotations

import glob
import math
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

from common.errors import InputError
from perception.types import ALERT_LABELS, LABELS
from sim.geometry import IDENTITY, Pose6, Shape, compose, parse_numbers
from sim.scenario import WORLDS_DIR, Scenario, load_scenario
from sim.trajectory import Trajectory

#: Where ``model://name`` URIs are looked up first (then GAZEBO_MODEL_PATH, SDF_PATH).
MODELS_DIR = os.path.join(WORLDS_DIR, "models")
FACE_MATERIAL = re.compile(r"^MaskPatrol/Face_(%s)_\w+$" % "|".join(LABELS))
#: Colours of the few Gazebo stock materials a world may name (media/materials/scripts).
GAZEBO_COLOURS = {
    "Gazebo/Grey": (0.7, 0.7, 0.7, 1.0), "Gazebo/DarkGrey": (0.3, 0.3, 0.3, 1.0),
    "Gazebo/White": (1.0, 1.0, 1.0, 1.0), "Gazebo/Black": (0.0, 0.0, 0.0, 1.0),
    "Gazebo/FlatBlack": (0.1, 0.1, 0.1, 1.0), "Gazebo/Red": (1.0, 0.0, 0.0, 1.0),
    "Gazebo/Green": (0.0, 1.0, 0.0, 1.0), "Gazebo/Blue": (0.0, 0.0, 1.0, 1.0),
    "Gazebo/Wood": (0.55, 0.4, 0.25, 1.0),
}


@dataclass
class StaticModel:
    """A static model: collision shapes (what the robot bumps into) and visuals (what the
    camera sees), both with poses in the world frame."""

    name: str
    collisions: List[Shape] = field(default_factory=list)
    visuals: List[Shape] = field(default_factory=list)


@dataclass
class Actor:
    """A person: visuals in the actor's frame (x forward, z up, origin on the floor), moved
    along ``trajectory``; ``label`` is what its face shows."""

    name: str
    label: str
    face_texture: str
    visuals: List[Shape]
    trajectory: Trajectory

    @property
    def needs_alert(self) -> bool:
        return self.label in ALERT_LABELS


@dataclass
class World:
    name: str
    path: str
    scenario: Scenario
    models: List[StaticModel]
    actors: List[Actor]
    ground: Optional[Shape]
    ambient: Tuple[float, float, float]
    background: Tuple[float, float, float]
    #: Direction (unit-free) and diffuse colour of the directional lights.
    lights: List[Tuple[Tuple[float, float, float], Tuple[float, float, float]]]

    def actor(self, name: str) -> Actor:
        for actor in self.actors:
            if actor.name == name:
                return actor
        raise KeyError(name)

    def bounds(self) -> Tuple[float, float, float, float]:
        """(x_min, x_max, y_min, y_max) of all static collision shapes, for maps."""
        xs: List[float] = []
        ys: List[float] = []
        for model in self.models:
            for shape in model.collisions:
                if shape.kind == "box":
                    c, s = abs(math.cos(shape.pose[5])), abs(math.sin(shape.pose[5]))
                    hx, hy = shape.size[0] / 2.0, shape.size[1] / 2.0
                    ex, ey = c * hx + s * hy, s * hx + c * hy
                else:
                    ex = ey = shape.size[0]
                xs += [shape.pose[0] - ex, shape.pose[0] + ex]
                ys += [shape.pose[1] - ey, shape.pose[1] + ey]
        for actor in self.actors:
            for wp in actor.trajectory.waypoints:
                xs.append(wp[1])
                ys.append(wp[2])
        if not xs:
            return (-5.0, 5.0, -5.0, 5.0)
        return (min(xs), max(xs), min(ys), max(ys))


def load_world(name_or_path: str) -> World:
    """Load world + scenario for a name ('lobby'), a .world path or a scenario .yaml path."""
    scenario = load_scenario(name_or_path)
    path = scenario.world_path
    try:
        root = ET.parse(path).getroot()
    except OSError as exc:
        raise InputError("cannot read world file %s: %s" % (path, exc.strerror)) from None
    except ET.ParseError as exc:
        raise InputError("%s is not valid XML (%s): fix the file; `ign sdf -k %s` shows details"
                         % (path, exc, path)) from None
    try:
        world = _parse_world(path, root, scenario)
    except InputError:
        raise
    except (ValueError, KeyError) as exc:
        raise InputError("%s: %s" % (path, exc.args[0] if exc.args else exc)) from None
    check_scenario(world)
    return world


def check_scenario(world: World) -> None:
    """Cross-check the YAML's expectations against the world's actors."""
    names = {a.name: a for a in world.actors}
    where = world.scenario.path
    for listed, must_alert in ((world.scenario.expect_alert, True),
                               (world.scenario.expect_no_alert, False)):
        for name in listed:
            if name not in names:
                raise InputError("%s: expected: unknown actor %r; %s has: %s"
                                 % (where, name, os.path.basename(world.path),
                                    ", ".join(sorted(names)) or "no actors"))
            if names[name].needs_alert != must_alert:
                raise InputError(
                    "%s: expected: actor %r shows a %s face, so it belongs under %s"
                    % (where, name, names[name].label, "alert" if names[name].needs_alert else "no_alert"))


# --- SDF parsing ------------------------------------------------------------------------

def _parse_world(path: str, root: ET.Element, scenario: Scenario) -> World:
    if root.tag != "sdf":
        raise ValueError("expected an <sdf> root element, found <%s>" % root.tag)
    element = root.find("world")
    if element is None:
        raise ValueError("no <world> element")
    name = element.get("name", "world")
    models: List[StaticModel] = []
    ground: Optional[Shape] = None
    for child in element:
        if child.tag == "model":
            model = _parse_model(child, IDENTITY, path)
            plane = [s for s in model.collisions if s.kind == "plane"]
            if plane:
                ground = _ground_visual(model) or plane[0]
                model.collisions = [s for s in model.collisions if s.kind != "plane"]
                model.visuals = [s for s in model.visuals if s.kind != "plane"]
            if model.collisions or model.visuals:
                models.append(model)
        elif child.tag == "include":
            models.append(_parse_include(child, path))
    actors = [_parse_actor(a, path) for a in element.findall("actor")]
    seen = set()
    for item in [m.name for m in models] + [a.name for a in actors]:
        if item in seen:
            raise ValueError("two models or actors are named %r" % item)
        seen.add(item)
    scene = element.find("scene")
    ambient = _colour(scene, "ambient", (0.4, 0.4, 0.4, 1.0))[:3]
    background = _colour(scene, "background", (0.7, 0.7, 0.7, 1.0))[:3]
    lights = []
    for light in element.findall("light"):
        if light.get("type") == "directional":
            direction = parse_numbers(_text(light, "direction", "0 0 -1"), 3, "light direction")
            diffuse = _colour(light, "diffuse", (0.8, 0.8, 0.8, 1.0))[:3]
            lights.append((direction, diffuse))
    return World(name=name, path=path, scenario=scenario, models=models, actors=actors,
                 ground=ground, ambient=ambient, background=background, lights=lights)  # type: ignore[arg-type]


def _ground_visual(model: StaticModel) -> Optional[Shape]:
    for shape in model.visuals:
        if shape.kind == "plane":
            return shape
    return None


def _parse_model(element: ET.Element, parent: Pose6, path: str,
                 name: Optional[str] = None) -> StaticModel:
    name = name or element.get("name", "")
    static = _text(element, "static", "false").lower() in ("1", "true")
    if not static:
        raise ValueError("model %r is not <static>: the simulator only has static models "
                         "(people are <actor>s, the robot comes from the scenario)" % name)
    pose = compose(parent, _pose(element, "model %s" % name))
    model = StaticModel(name=name)
    for link in element.findall("link"):
        link_pose = compose(pose, _pose(link, "link %s" % link.get("name")))
        for col in link.findall("collision"):
            model.collisions.append(_shape(col, link_pose, "%s/%s" % (name, col.get("name")), path))
        for vis in link.findall("visual"):
            model.visuals.append(_shape(vis, link_pose, "%s/%s" % (name, vis.get("name")), path))
    return model


def _parse_include(element: ET.Element, path: str) -> StaticModel:
    uri = _text(element, "uri", "")
    folder = find_model(uri, path)
    config = os.path.join(folder, "model.config")
    sdf_name = "model.sdf"
    if os.path.isfile(config):
        try:
            node = ET.parse(config).getroot().find("sdf")
        except ET.ParseError as exc:
            raise InputError("%s is not valid XML: %s" % (config, exc)) from None
        if node is not None and (node.text or "").strip():
            sdf_name = node.text.strip()
    sdf_path = os.path.join(folder, sdf_name)
    try:
        model = ET.parse(sdf_path).getroot().find("model")
    except OSError:
        raise InputError("%s: <include> %s: %s is missing" % (path, uri, sdf_path)) from None
    except ET.ParseError as exc:
        raise InputError("%s is not valid XML (%s)" % (sdf_path, exc)) from None
    if model is None:
        raise InputError("%s: no <model> element" % sdf_path)
    name = _text(element, "name", "") or model.get("name", "")
    static = element.find("static")
    if static is not None:
        model = _with_static(model, static.text or "false")
    return _parse_model(model, _pose(element, "include %s" % uri), sdf_path, name=name)


def _with_static(model: ET.Element, value: str) -> ET.Element:
    copy = ET.fromstring(ET.tostring(model))
    node = copy.find("static")
    if node is None:
        node = ET.SubElement(copy, "static")
    node.text = value
    return copy


def find_model(uri: str, world_path: str) -> str:
    """The folder of ``model://name`` (worlds/models, then GAZEBO_MODEL_PATH, SDF_PATH)."""
    if not uri.startswith("model://"):
        raise InputError("%s: <include> uri %r: only model:// URIs are supported" % (world_path, uri))
    rest = uri[len("model://"):].strip("/")
    dirs = [MODELS_DIR]
    for var in ("GAZEBO_MODEL_PATH", "SDF_PATH"):
        dirs += [d for d in os.environ.get(var, "").split(os.pathsep) if d]
    for folder in dirs:
        candidate = os.path.join(folder, rest)
        if os.path.isdir(candidate):
            return candidate
    raise InputError("%s: cannot find %s in %s (put the model folder in worlds/models)"
                     % (world_path, uri, ", ".join(dirs)))


def _parse_actor(element: ET.Element, path: str) -> Actor:
    name = element.get("name", "")
    if element.find("skin") is not None:
        raise ValueError("actor %r has a <skin>: the simulator draws people from their link "
                         "visuals only (body boxes and a textured face plate)" % name)
    visuals: List[Shape] = []
    face: Optional[Tuple[str, str]] = None
    for link in element.findall("link"):
        link_pose = _pose(link, "actor %s link %s" % (name, link.get("name")))
        for vis in link.findall("visual"):
            shape = _shape(vis, link_pose, "%s/%s" % (name, vis.get("name")), path)
            material = vis.find("material/script/name")
            match = FACE_MATERIAL.match((material.text or "").strip()) if material is not None else None
            if match:
                if face is not None:
                    raise ValueError("actor %r has two face plates" % name)
                if shape.kind != "box":
                    raise ValueError("actor %r: the face plate must be a <box>" % name)
                face = (match.group(1), shape.texture)
            visuals.append(shape)
    if face is None:
        raise ValueError("actor %r has no face plate: give one visual the material "
                         "MaskPatrol/Face_<label>_<n> (see worlds/README.md)" % name)
    script = element.find("script")
    if script is None:
        raise ValueError("actor %r has no <script>" % name)
    trajectories = script.findall("trajectory")
    if len(trajectories) != 1:
        raise ValueError("actor %r: expected one <trajectory>, found %d" % (name, len(trajectories)))
    traj = trajectories[0]
    waypoints = []
    for wp in traj.findall("waypoint"):
        time = float(_text(wp, "time", "nan"))
        pose = parse_numbers(_text(wp, "pose", ""), 6, "actor %s waypoint pose" % name)
        waypoints.append((time, pose[0], pose[1], pose[2], pose[5]))
    if not waypoints:
        raise ValueError("actor %r: its trajectory has no <waypoint>" % name)
    try:
        trajectory = Trajectory(
            waypoints=tuple(waypoints),
            tension=float(traj.get("tension", "0")),
            loop=_text(script, "loop", "true").lower() in ("1", "true"),
            delay_start=float(_text(script, "delay_start", "0")),
            auto_start=_text(script, "auto_start", "true").lower() in ("1", "true"),
        )
    except ValueError as exc:
        raise ValueError("actor %r: %s" % (name, exc)) from None
    return Actor(name=name, label=face[0], face_texture=face[1], visuals=visuals,
                 trajectory=trajectory)


def _shape(element: ET.Element, parent: Pose6, name: str, path: str) -> Shape:
    pose = compose(parent, _pose(element, name))
    geometry = element.find("geometry")
    if geometry is None or len(geometry) == 0:
        raise ValueError("%s has no <geometry>" % name)
    geo = geometry[0]
    if geo.tag == "box":
        size = parse_numbers(_text(geo, "size", ""), 3, "%s box size" % name)
    elif geo.tag == "cylinder":
        size = (float(_text(geo, "radius", "nan")), float(_text(geo, "length", "nan")))
    elif geo.tag == "sphere":
        size = (float(_text(geo, "radius", "nan")),)
    elif geo.tag == "plane":
        size = parse_numbers(_text(geo, "size", "100 100"), 2, "%s plane size" % name)
    else:
        raise ValueError("%s: <%s> geometry is not supported (box, cylinder, sphere, plane)"
                         % (name, geo.tag))
    if not all(v > 0 for v in size):
        raise ValueError("%s: sizes must be positive, got %r" % (name, size))
    rgba, texture = (0.7, 0.7, 0.7, 1.0), ""
    material = element.find("material")
    if material is not None:
        rgba = _colour(material, "diffuse", _colour(material, "ambient", rgba))
        script = material.find("script")
        if script is not None:
            rgba, texture = _script_material(script, name, path)
    return Shape(geo.tag, tuple(size), pose, tuple(rgba), name, texture)  # type: ignore[arg-type]


def _script_material(script: ET.Element, name: str, path: str) -> Tuple[Tuple[float, ...], str]:
    """Colour and texture file of an OGRE material named in ``<material><script>``."""
    material = _text(script, "name", "")
    if material in GAZEBO_COLOURS:
        return GAZEBO_COLOURS[material], ""
    uris = [(u.text or "").strip() for u in script.findall("uri")]
    folders = [find_model_file(u, path) for u in uris]
    for folder in folders:
        for script_file in sorted(glob.glob(os.path.join(folder, "*.material"))):
            texture = _material_texture(script_file, material)
            if texture is None:
                continue
            if not texture:
                return (1.0, 1.0, 1.0, 1.0), ""
            for tex_folder in folders:
                candidate = os.path.join(tex_folder, texture)
                if os.path.isfile(candidate):
                    return (1.0, 1.0, 1.0, 1.0), candidate
            raise InputError("%s: %s: material %s (in %s) uses texture %s, which is missing from %s"
                             % (path, name, material, script_file, texture, ", ".join(folders)))
    raise InputError("%s: %s: material %r is not defined in any .material file under %s"
                     % (path, name, material, ", ".join(folders) or "its <uri>s"))


def find_model_file(uri: str, world_path: str) -> str:
    """A ``model://name/sub/dir`` or ``file://`` URI as a local folder."""
    if uri.startswith("model://"):
        rest = uri[len("model://"):].strip("/")
        model, _, sub = rest.partition("/")
        return os.path.join(find_model("model://" + model, world_path), sub)
    if uri.startswith("file://"):
        return uri[len("file://"):]
    return os.path.join(os.path.dirname(world_path), uri)


_MATERIAL_RE = re.compile(r"^\s*material\s+(\S+)", re.M)
_TEXTURE_RE = re.compile(r"^\s*texture\s+(\S+)", re.M)


def _material_texture(script_file: str, material: str) -> Optional[str]:
    """The texture file name of ``material`` in an OGRE script; "" if it has none; None if
    the script does not define it."""
    with open(script_file) as handle:
        text = handle.read()
    starts = [(m.start(), m.group(1)) for m in _MATERIAL_RE.finditer(text)]
    for i, (start, name) in enumerate(starts):
        if name != material:
            continue
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        found = _TEXTURE_RE.search(text, start, end)
        return found.group(1) if found else ""
    return None


def _pose(element: ET.Element, what: str) -> Pose6:
    node = element.find("pose")
    if node is None or not (node.text or "").strip():
        return IDENTITY
    if node.get("relative_to") or node.get("frame"):
        raise ValueError("%s: <pose relative_to=...> is not supported" % what)
    return parse_numbers(node.text, 6, "%s pose" % what)  # type: ignore[return-value]


def _text(element: Optional[ET.Element], tag: str, default: str) -> str:
    if element is None:
        return default
    node = element.find(tag)
    if node is None or node.text is None or not node.text.strip():
        return default
    return node.text.strip()


def _colour(element: Optional[ET.Element], tag: str, default) -> Tuple[float, ...]:
    text = _text(element, tag, "")
    if not text:
        return tuple(default)
    values = parse_numbers(text, 4, "<%s>" % tag)
    return tuple(min(1.0, max(0.0, v)) for v in values)
