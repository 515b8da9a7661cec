"""Rewrite the people's trajectories in worlds/crowd.world from one table (LANES below).

    python3 worlds/tools/lay_crowd_lanes.py        # edits worlds/crowd.world in place

Why a tool: ten walkers with turn-around waypoints are 300 lines of SDF; the table says
the same in ten lines, and keeps every walker consistent (speed, pauses, quarter turns).

The concourse keeps a 3.4 m wide aisle along y = 0 free for the robot; people walk
east-west in lanes from y = +-1.7 to +-3.3, so a robot driving the aisle meets them face on
(a face is only visible from in front) at 3-6 m, without ever sharing a lane with them.
"""
from __future__ import annotations

import math
import os
import re
import sys

WORLD = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "crowd.world")
WEST, EAST = 1.0, 13.0      # the ends of every lane (m)
SPEED = 0.7                 # walking speed (m/s)
PAUSE = 1.0                 # standing still at each end (s), including two quarter turns

#: name: (lane y, x where the walk starts, walking east first?). One walker per lane, so
#: nobody walks through anybody; the people without a mask (or with it below the nose) walk
#: the inner lanes, where a robot in the aisle sees their faces at 3-5 m.
LANES = {
    "leo": (-1.7, 5.0, True),
    "ned": (1.7, 11.0, False),
    "pia": (-2.1, 12.0, False),
    "sam": (2.1, 3.0, True),
    "uma": (-2.5, 8.0, True),
    "kim": (2.5, 9.0, False),
    "mia": (-2.9, 2.0, True),
    "ola": (2.9, 6.0, False),
    "raj": (-3.3, 10.0, False),
    "tia": (3.3, 4.0, True),
}


def waypoints(y: float, start_x: float, east: bool):
    """(time, x, yaw) of one loop: walk to one end, turn, walk to the other end, turn, and
    back to the start; the loop's last pose equals its first (Gazebo loops trajectories)."""
    out = []
    t, x = 0.0, start_x
    yaw = 0.0 if east else math.pi
    out.append((t, x, yaw))
    legs = [EAST if east else WEST, WEST if east else EAST]
    for end in legs:
        t += abs(end - x) / SPEED
        x = end
        out.append((t, x, yaw))
        turned = math.pi - yaw if yaw in (0.0, math.pi) else yaw
        half = yaw + (math.pi / 2 if yaw == 0.0 else -math.pi / 2)
        t += PAUSE / 2
        out.append((t, x, half))
        t += PAUSE / 2
        yaw = turned
        out.append((t, x, yaw))
    if abs(start_x - x) > 1e-9:  # a walker that started at an end is back already
        t += abs(start_x - x) / SPEED
        out.append((t, start_x, yaw))
    return out


def trajectory_xml(name: str) -> str:
    y, start, east = LANES[name]
    lines = ['<trajectory id="0" type="walk" tension="1">']
    for t, x, yaw in waypoints(y, start, east):
        lines += ["  <waypoint>", "    <time>%.3f</time>" % t,
                  "    <pose>%g %g 0 0 0 %.4f</pose>" % (round(x, 3), y, yaw), "  </waypoint>"]
    lines.append("</trajectory>")
    return ("\n" + " " * 8).join(lines)


def main() -> int:
    text = open(WORLD).read()
    for name, (y, start, east) in LANES.items():
        block = re.search(r'(<!-- %s: [^\n]*-->\n\s*<actor name="%s">.*?</actor>)' % (name, name),
                          text, re.S)
        if block is None:
            print("no actor %s in %s" % (name, WORLD), file=sys.stderr)
            return 2
        old = block.group(1)
        label = re.search(r"<!-- %s: (\w+)\." % name, old).group(1)
        new = re.sub(r"<!-- %s: [^\n]*-->" % name,
                     "<!-- %s: %s. Walks lane y = %g between x = %g and %g, from x = %g. -->"
                     % (name, label, y, WEST, EAST, start), old, count=1)
        new = re.sub(r'(<actor name="%s">\s*<pose>)[^<]*(</pose>)' % name,
                     r"\g<1>%g %g 0 0 0 %.4f\g<2>" % (start, y, 0.0 if east else math.pi), new,
                     count=1)
        new = re.sub(r'<trajectory id="0".*?</trajectory>', lambda _: trajectory_xml(name), new,
                     count=1, flags=re.S)
        text = text.replace(old, new)
    open(WORLD, "w").write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
