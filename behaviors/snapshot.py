"""Tree snapshots: a py_trees tree as the JSON that the py_trees_js renderer draws.

patrol_node publishes ``json.dumps(tree_snapshot(root, ...))`` on ``~tree/snapshots`` and the
viewer (``py-trees-tree-viewer``) hands it unchanged to py_trees_js's ``render_tree``. So the
shape here is the renderer's, the one upstream py_trees_ros_viewer builds for ROS 2::

    {
      "changed": "true",                 # a string: the JS compares with 'true'
      "timestamp": 1700000000.0,         # seconds; the timeline orders snapshots by it
      "visited_path": ["<id>", ...],     # behaviours ticked in the last tick
      "tip": "<id>",                     # ours: the deepest running behaviour (JS ignores it)
      "behaviours": {
        "<id>": {"id": "<id>", "name": ..., "status": "RUNNING", "colour": "#FFA500",
                 "children": ["<id>", ...], "details": ...,
                 "data": {"Class": ..., "Feedback": ..., "Blackboard": ["/key (w)"]}},
      },
      "blackboard": {"behaviours": {"<id>": {"/key": "w"}}, "data": {"/key": "short string"}},
      "activity": ["<table>...</table>"],   # only while the blackboard activity stream is on
    }

Text fields are HTML-escaped because py_trees_js writes them with ``innerHTML``: a feedback
message such as ``<unmasked face>`` must show as text, not vanish as a tag.

No rospy here: the snapshot is plain data, so the tree can be snapshotted (and tested)
without a ROS master.
"""
from __future__ import annotations

import html
import time
from typing import Any, Dict, Iterable, List, NamedTuple, Optional, Tuple

import py_trees
from py_trees.blackboard import Blackboard

from common.errors import InputError

#: Colour of a behaviour's type bar, by kind; the same palette as py_trees_ros_viewer.
COLOURS = {
    "Sequence": "#FFA500",
    "Selector": "#00FFFF",
    "Parallel": "#FFFF00",
    "Composite": "#FFA500",
    "Decorator": "#DDDDDD",
    "Behaviour": "#555555",
}

#: The statuses py_trees_js knows how to colour (its glow: blue, green, red, gray).
STATUSES = ("INVALID", "RUNNING", "SUCCESS", "FAILURE")

#: Blackboard access letters, as the renderer's blackboard view and the upstream viewer use.
ACCESS_LETTERS = ("r", "w", "x")


def behaviour_kind(behaviour: py_trees.behaviour.Behaviour) -> str:
    """Name the kind of ``behaviour`` (a key of COLOURS): what shape of node it is."""
    if isinstance(behaviour, py_trees.composites.Sequence):
        return "Sequence"
    if isinstance(behaviour, py_trees.composites.Selector):
        return "Selector"
    if isinstance(behaviour, py_trees.composites.Parallel):
        return "Parallel"
    if isinstance(behaviour, py_trees.composites.Composite):
        return "Composite"
    if isinstance(behaviour, py_trees.decorators.Decorator):
        return "Decorator"
    return "Behaviour"


def short_text(value: Any, max_chars: int = 60) -> str:
    """Render ``value`` as one line of at most ``max_chars`` characters for the viewer.

    Blackboard values can be large (images, track lists); the viewer needs a glance, not a
    dump, and a snapshot is published on every change.
    """
    if max_chars < 4:
        raise ValueError("max_chars must be at least 4, got %r" % (max_chars,))
    if isinstance(value, float):
        text = "%.4g" % value
    else:
        try:
            text = str(value)
        except Exception as error:  # a broken __str__ must not stop the tree's snapshots
            text = "<unprintable %s: %s>" % (type(value).__name__, error)
    text = " ".join(text.split())
    if len(text) > max_chars:
        text = text[:max_chars - 1] + "\u2026"
    return text


def _escape(text: str) -> str:
    # Only & < >: the renderer puts text between tags, never in attributes, and it elides
    # long details by measuring raw characters, so fewer entities keep that cut readable.
    return html.escape(text, quote=False)


def _blackboard_access(behaviour: py_trees.behaviour.Behaviour) -> Dict[str, str]:
    """Map each blackboard key that ``behaviour``'s clients registered to r, w or x.

    Write beats read and exclusive write beats both, so a key read and written shows 'w'.
    """
    access: Dict[str, str] = {}
    for client in behaviour.blackboards:
        for letter, keys in zip(ACCESS_LETTERS, (client.read, client.write, client.exclusive)):
            for key in keys:
                access[key] = letter
    return access


def _details(behaviour: py_trees.behaviour.Behaviour) -> Optional[str]:
    """The line under a behaviour's name: its feedback message (and a parallel's policy)."""
    parts = []
    if isinstance(behaviour, py_trees.composites.Parallel):
        parts.append(type(behaviour.policy).__name__)
    if behaviour.feedback_message:
        parts.append(short_text(behaviour.feedback_message, 80))
    return " \u00b7 ".join(parts) if parts else None


def _activity(max_chars: int) -> Optional[List[str]]:
    """The blackboard activity stream as xhtml rows, or None when the stream is off.

    The renderer shows an 'Activity View' only when the field is present, so it is left
    out unless ``Blackboard.enable_activity_stream()`` was called. Clearing the stream
    between ticks is the caller's job (it is global state).
    """
    stream = Blackboard.activity_stream
    if stream is None:
        return None
    rows = []
    for item in stream.data:
        value = item.current_value if item.current_value is not None else item.previous_value
        rows.append(
            "<tr><td style='color:cyan;'>%s</td><td style='color:darkgoldenrod;'>%s</td>"
            "<td>%s</td><td style='color:green;'>%s</td></tr>" % (
                _escape(item.key), _escape(str(getattr(item.activity_type, "value",
                                                       item.activity_type))),
                _escape(item.client_name),
                _escape(short_text(value, max_chars)) if value is not None else ""))
    return ["<table>" + "".join(rows) + "</table>"] if rows else []


def tree_snapshot(root: Any, changed: bool = True,
                  visited: Optional[Iterable[Any]] = None,
                  timestamp: Optional[float] = None,
                  blackboard_data: bool = True,
                  max_value_chars: int = 60) -> Dict[str, Any]:
    """Serialise a py_trees tree into the dict that py_trees_js's ``render_tree`` draws.

    Args:
        root: the root behaviour, or a ``py_trees.trees.BehaviourTree``.
        changed: whether the tree changed since the last published snapshot (see
            ChangeDetector); the viewer's timeline marks changed snapshots as significant.
        visited: ids of the behaviours ticked in the last tick, e.g. the keys of a
            ``py_trees.visitors.SnapshotVisitor``'s ``visited`` attached to the
            BehaviourTree. Without it, every behaviour whose status is not INVALID counts
            as visited (py_trees resets behaviours it stops to INVALID, so this is the
            active part of the tree, plus finished siblings of a running sequence).
        timestamp: seconds since the epoch; now if None.
        blackboard_data: include the values of the blackboard keys the tree uses.
        max_value_chars: longest rendering of one blackboard value.

    Returns:
        A JSON-serialisable dict (see the module docstring for its shape).
    """
    if isinstance(root, py_trees.trees.BehaviourTree):
        root = root.root
    if not isinstance(root, py_trees.behaviour.Behaviour):
        raise ValueError("root must be a py_trees Behaviour or BehaviourTree, got %s"
                         % type(root).__name__)
    if max_value_chars < 4:
        raise ValueError("max_value_chars must be at least 4, got %r" % (max_value_chars,))
    visited_ids = None if visited is None else set(visited)
    behaviours: Dict[str, Dict[str, Any]] = {}
    visited_path: List[str] = []
    blackboard_behaviours: Dict[str, Dict[str, str]] = {}
    used_keys = set()
    for behaviour in _preorder(root):
        behaviour_id = str(behaviour.id)
        kind = behaviour_kind(behaviour)
        entry: Dict[str, Any] = {
            "id": behaviour_id,
            "name": _escape(" ".join(behaviour.name.split())),
            "status": behaviour.status.name,
            "colour": COLOURS[kind],
            "data": {
                "Class": _escape("%s.%s" % (type(behaviour).__module__,
                                            type(behaviour).__name__)),
                "Feedback": _escape(short_text(behaviour.feedback_message, 200)),
            },
        }
        if behaviour.children:
            entry["children"] = [str(child.id) for child in behaviour.children]
        details = _details(behaviour)
        if details:
            entry["details"] = _escape(details)
        access = _blackboard_access(behaviour)
        if access:
            keys = sorted(access)
            entry["data"]["Blackboard"] = [_escape("%s (%s)" % (key, access[key]))
                                           for key in keys]
            blackboard_behaviours[behaviour_id] = {_escape(key): access[key] for key in keys}
            used_keys.update(keys)
        behaviours[behaviour_id] = entry
        if visited_ids is None:
            is_visited = behaviour.status != py_trees.common.Status.INVALID
        else:
            is_visited = behaviour.id in visited_ids
        if is_visited:
            visited_path.append(behaviour_id)
    data: Dict[str, str] = {}
    if blackboard_data:
        for key in sorted(used_keys):
            if key in Blackboard.storage:
                data[_escape(key)] = _escape(short_text(Blackboard.storage[key],
                                                        max_value_chars))
    tip = root.tip()
    snapshot: Dict[str, Any] = {
        "changed": "true" if changed else "false",
        "timestamp": time.time() if timestamp is None else float(timestamp),
        "visited_path": visited_path,
        "tip": str(tip.id) if tip is not None else None,
        "behaviours": behaviours,
        "blackboard": {"behaviours": blackboard_behaviours, "data": data},
    }
    activity = _activity(max_value_chars)
    if activity is not None:
        snapshot["activity"] = activity
    return snapshot


def _preorder(root: py_trees.behaviour.Behaviour) -> Iterable[py_trees.behaviour.Behaviour]:
    """Parents before children, children in order: the order a reader scans the tree."""
    stack = [root]
    while stack:
        behaviour = stack.pop()
        yield behaviour
        stack.extend(reversed(behaviour.children))


class Change(NamedTuple):
    """What changed since the last check: the tree itself, or only blackboard values."""

    tree: bool
    blackboard: bool

    def __bool__(self) -> bool:  # "if detector.check(root):" reads as "publish?"
        return self.tree or self.blackboard


class ChangeDetector:
    """Decides whether a new snapshot is worth publishing, so patrol_node sends only changes.

    The tree counts as changed when its structure, any status or feedback message, or the
    tip differs from the last check; that is what a person watching the viewer would see
    move. Blackboard values are compared separately (``watch_blackboard``), because sensor
    values change on nearly every tick and the viewer's timeline marks only tree changes
    as significant::

        detector = ChangeDetector()
        change = detector.check(root)          # after each tick
        if change:
            publisher.publish(json.dumps(tree_snapshot(root, changed=change.tree)))
    """

    def __init__(self, watch_blackboard: bool = True, max_value_chars: int = 60) -> None:
        if max_value_chars < 4:
            raise ValueError("max_value_chars must be at least 4, got %r" % (max_value_chars,))
        self.watch_blackboard = bool(watch_blackboard)
        self.max_value_chars = max_value_chars
        self._tree: Optional[Tuple] = None
        self._blackboard: Optional[Tuple] = None

    def check(self, root: Any) -> Change:
        """Compare ``root`` with the last check (the first check always reports a change)."""
        if isinstance(root, py_trees.trees.BehaviourTree):
            root = root.root
        tree_state = tree_signature(root)
        tree_changed = tree_state != self._tree
        self._tree = tree_state
        blackboard_changed = False
        if self.watch_blackboard:
            values = blackboard_signature(root, self.max_value_chars)
            blackboard_changed = values != self._blackboard
            self._blackboard = values
        return Change(tree=tree_changed, blackboard=blackboard_changed)

    def reset(self) -> None:
        """Forget the last state, so the next check reports a change (e.g. a new viewer)."""
        self._tree = None
        self._blackboard = None


def tree_signature(root: py_trees.behaviour.Behaviour) -> Tuple:
    """Everything a viewer draws about the tree, as a comparable tuple (no blackboard)."""
    tip = root.tip()
    nodes = tuple((behaviour.id, behaviour.name, behaviour.status, behaviour.feedback_message,
                   tuple(child.id for child in behaviour.children))
                  for behaviour in _preorder(root))
    return nodes, (tip.id if tip is not None else None)


def blackboard_signature(root: py_trees.behaviour.Behaviour, max_chars: int = 60) -> Tuple:
    """The rendered values of the blackboard keys the tree uses, as a comparable tuple.

    Compared as rendered text: a change the viewer could not show is not worth a snapshot.
    """
    keys = set()
    for behaviour in _preorder(root):
        keys.update(_blackboard_access(behaviour))
    return tuple((key, short_text(Blackboard.storage[key], max_chars))
                 for key in sorted(keys) if key in Blackboard.storage)


def check_snapshot(tree: Any, source: str = "snapshot") -> Dict[str, Any]:
    """Raise InputError unless ``tree`` has the fields py_trees_js needs; return it.

    The renderer answers a malformed tree with a browser alert() or a blank page, so the
    viewer checks snapshots (from a file or a topic) first and names what is missing.
    """
    if not isinstance(tree, dict):
        raise InputError("%s: expected a JSON object (a tree snapshot), got %s"
                         % (source, type(tree).__name__))
    for field, kind in (("behaviours", dict), ("visited_path", list)):
        if not isinstance(tree.get(field), kind):
            raise InputError("%s: the '%s' field is missing or not a %s; make it with "
                             "behaviors.snapshot.tree_snapshot()"
                             % (source, field, "list" if kind is list else "object"))
    if not isinstance(tree.get("timestamp"), (int, float)) or isinstance(tree["timestamp"], bool):
        raise InputError("%s: the 'timestamp' field is missing or not a number" % source)
    if tree.get("changed", "true") not in ("true", "false"):
        raise InputError("%s: 'changed' must be the string 'true' or 'false', got %r"
                         % (source, tree.get("changed")))
    behaviours = tree["behaviours"]
    if not behaviours:
        raise InputError("%s: the tree has no behaviours" % source)
    for key, behaviour in behaviours.items():
        if not isinstance(behaviour, dict) or behaviour.get("id") != key:
            raise InputError("%s: behaviour %r must be an object whose 'id' is %r"
                             % (source, key, key))
        if not isinstance(behaviour.get("name"), str):
            raise InputError("%s: behaviour %r has no 'name'" % (source, key))
        if behaviour.get("status", "INVALID") not in STATUSES:
            raise InputError("%s: behaviour %r has status %r, expected one of %s"
                             % (source, key, behaviour.get("status"), ", ".join(STATUSES)))
        for child in behaviour.get("children", []):
            if child not in behaviours:
                raise InputError("%s: behaviour %r lists a child %r that is not in 'behaviours'"
                                 % (source, key, child))
    for behaviour_id in tree["visited_path"]:
        if behaviour_id not in behaviours:
            raise InputError("%s: 'visited_path' names %r, which is not in 'behaviours'"
                             % (source, behaviour_id))
    return tree
