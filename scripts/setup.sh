#!/usr/bin/env bash
# One idempotent set-up for mask_patrol: ROS 1, the project's venv (.venv), pinned Python
# packages and the catkin build. Both README commands call it; a second run finds every
# step done (by stamps that hash their inputs) and returns in about a second.
#
# On a robot with ROS Noetic (/opt/ros/noetic/setup.bash) it uses that ROS and installs no
# apt packages for it; on Debian 12 it installs Debian's own ROS 1 packages.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMPS="$VENV/.stamps"
export DEBIAN_FRONTEND=noninteractive

say() { printf '[setup] %s\n' "$*"; }
digest() { cat "$@" | sha256sum | cut -c1-16; }
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

NOETIC=/opt/ros/noetic/setup.bash

# install_missing_apt WHAT PACKAGE...: apt-get only the packages not yet installed.
install_missing_apt() {
  local what="$1"; shift
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${#missing[@]} apt packages ($what)..."
    sudo_if_needed apt-get update -qq
    sudo_if_needed apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    say "apt packages: already installed"
  fi
}

# --- the robot: ROBOT=1 bash scripts/setup.sh, or scripts/setup.sh --robot ------------
# Only what the patrol runs (requirements-robot.txt, with --no-deps: onnxruntime, OpenCV
# contrib, numpy, py_trees, ...) in its own venv, .venv-robot; no torch. The node runs there with
# runtime "onnx" and either detector (MTCNN through its ONNX export). The catkin workspace
# is shared: it is built once, by whichever set-up comes first; its node relays run the
# interpreter it was built with.
if [ "${ROBOT:-0}" = 1 ] || [ "${1:-}" = --robot ]; then
  RVENV="$ROOT/.venv-robot"
  if [ ! -f "$NOETIC" ]; then
    ROBOT_APT=(python3-venv python3-pip build-essential cmake
      ros-core rosbash python3-rospy python3-roslaunch catkin ros-message-generation
      ros-message-runtime python3-genpy ros-std-msgs python3-std-msgs libstd-msgs-dev
      ros-geometry-msgs python3-geometry-msgs libgeometry-msgs-dev ros-sensor-msgs
      python3-sensor-msgs libsensor-msgs-dev ros-nav-msgs python3-nav-msgs libnav-msgs-dev
      python3-cv-bridge)
  else
    ROBOT_APT=(python3-venv python3-pip build-essential cmake)
  fi
  install_missing_apt "robot: ROS 1" "${ROBOT_APT[@]}"
  if [ ! -x "$RVENV/bin/python3" ]; then
    say "robot: creating $RVENV from /usr/bin/python3 (--system-site-packages, to see rospy)"
    /usr/bin/python3 -m venv --system-site-packages "$RVENV"
  fi
  mkdir -p "$RVENV/.stamps"
  want=$(digest "$ROOT/requirements-robot.txt" "$ROOT/pyproject.toml")
  if [ "$(cat "$RVENV/.stamps/pip" 2>/dev/null)" != "$want" ]; then
    say "robot: installing requirements-robot.txt into .venv-robot..."
    rpip() {
      "$RVENV/bin/pip" install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
      return "${PIPESTATUS[0]}"
    }
    rpip --no-deps -r "$ROOT/requirements-robot.txt"  # the whole list; see its header
    rpip --no-deps --no-build-isolation -e "$ROOT"
    "$RVENV/bin/python3" -c "import cv2; assert hasattr(cv2, 'TrackerKCF_create'), 'cv2 lost KCF'"
    if "$RVENV/bin/python3" -c "import torch" 2>/dev/null; then
      say "robot: torch is importable in .venv-robot (from the system?); the node does not use it"
    fi
    echo "$want" > "$RVENV/.stamps/pip"
  else
    say "robot: python packages up to date"
  fi
  if [ -f "$ROOT/catkin_ws/devel/setup.bash" ]; then
    built=$(head -1 "$ROOT/catkin_ws/devel/lib/mask_patrol/patrol_node" 2>/dev/null | cut -c3-)
    say "robot: catkin_ws already built (node relays run ${built:-?}); not rebuilt"
  else
    say "robot: building catkin_ws with .venv-robot's interpreter..."
    (
      set +u
      [ -f "$NOETIC" ] && source "$NOETIC"
      cd "$ROOT/catkin_ws"
      catkin_make --force-cmake -DPYTHON_EXECUTABLE="$RVENV/bin/python3" -DCATKIN_ENABLE_TESTING=OFF >"$RVENV/.stamps/catkin.log" 2>&1 \
        || { tail -30 "$RVENV/.stamps/catkin.log"; echo "[setup] catkin_make failed; full log: $RVENV/.stamps/catkin.log"; exit 1; }
    )
  fi
  say "robot ready: source catkin_ws/devel/setup.bash and put .venv-robot/bin first on PATH"
  exit 0
fi

# --- 1. system packages -------------------------------------------------------------
APT_PACKAGES=(
  python3-venv python3-pip build-essential cmake
  # rendering for the headless simulator and video encoding
  libosmesa6 ffmpeg
  # world validation (`ign sdf -k`) and the tree viewer's headless-browser test
  libsdformat-dev ignition-tools ruby chromium
  # `py-trees-render behaviors.tree.create_root` draws the tree's PNG/SVG with dot
  graphviz
)
if [ ! -f "$NOETIC" ]; then
  APT_PACKAGES+=(
    ros-core rosbash python3-rospy python3-roslaunch python3-rostest librostest-dev
    catkin catkin-tools ros-message-generation ros-message-runtime python3-genpy
    ros-std-msgs python3-std-msgs libstd-msgs-dev ros-geometry-msgs python3-geometry-msgs
    libgeometry-msgs-dev ros-sensor-msgs python3-sensor-msgs libsensor-msgs-dev
    ros-nav-msgs python3-nav-msgs libnav-msgs-dev python3-cv-bridge
  )
fi
install_missing_apt "ROS 1 from Debian, rendering, ffmpeg" "${APT_PACKAGES[@]}"

# --- 2. the venv ----------------------------------------------------------------------
# Debian's interpreter, not the pyenv one on PATH: only it can see rospy and cv_bridge.
if [ -f "$NOETIC" ]; then BASE_PY=/usr/bin/python3; else BASE_PY=/usr/bin/python3; fi
if [ ! -x "$VENV/bin/python3" ]; then
  say "creating $VENV from $BASE_PY (--system-site-packages, to see rospy)"
  "$BASE_PY" -m venv --system-site-packages "$VENV"
fi
mkdir -p "$STAMPS"

want=$(digest "$ROOT/requirements.txt" "$ROOT/requirements-nodeps.txt" "$ROOT/pyproject.toml")
if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$want" ]; then
  say "installing pinned Python packages into .venv (first time: several minutes)..."
  quiet_pip() {  # this machine's pip config lists local indexes that warn for every package
    "$VENV/bin/pip" install -q "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
  }
  quiet_pip -r "$ROOT/requirements.txt"
  quiet_pip --no-deps -r "$ROOT/requirements-nodeps.txt"
  # The project itself (perception, behaviors, sim and their console scripts), editable.
  quiet_pip --no-deps --no-build-isolation -e "$ROOT"
  "$VENV/bin/python3" -c "import cv2; assert hasattr(cv2, 'TrackerKCF_create'), 'cv2 lost KCF: opencv-contrib was overwritten'"
  echo "$want" > "$STAMPS/pip"
else
  say "python packages: up to date"
fi

# --- 3. the catkin workspace ----------------------------------------------------------
CATKIN_INPUTS=$(find "$ROOT/catkin_ws/src" -type f \( -name '*.msg' -o -name 'CMakeLists.txt' -o -name 'package.xml' -o -name 'setup.py' -o -path '*/nodes/*' \) | sort)
want=$(echo "$CATKIN_INPUTS" | xargs cat | sha256sum | cut -c1-16)
if [ "$(cat "$STAMPS/catkin" 2>/dev/null)" != "$want" ] || [ ! -f "$ROOT/catkin_ws/devel/setup.bash" ]; then
  say "building catkin_ws (messages, node wrappers)..."
  (
    set +u
    [ -f "$NOETIC" ] && source "$NOETIC"
    cd "$ROOT/catkin_ws"
    catkin_make --force-cmake -DPYTHON_EXECUTABLE="$VENV/bin/python3" -DCATKIN_ENABLE_TESTING=OFF >"$STAMPS/catkin.log" 2>&1 \
      || { tail -30 "$STAMPS/catkin.log"; echo "[setup] catkin_make failed; full log: $STAMPS/catkin.log"; exit 1; }
  )
  echo "$want" > "$STAMPS/catkin"
else
  say "catkin_ws: up to date"
fi
say "ready: source scripts/env.sh to use it"
