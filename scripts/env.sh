# Source this (after scripts/setup.sh) to get the project's ROS workspace and venv:
#   source scripts/env.sh
# It puts the catkin workspace on ROS_PACKAGE_PATH, the venv first on PATH, and pins the
# math libraries to one thread each (2-core machine: they oversubscribe otherwise).
_MP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -f /opt/ros/noetic/setup.bash ]; then source /opt/ros/noetic/setup.bash; fi
if [ -f "$_MP_ROOT/catkin_ws/devel/setup.bash" ]; then
  source "$_MP_ROOT/catkin_ws/devel/setup.bash"
fi
export PATH="$_MP_ROOT/.venv/bin:$PATH"
export VIRTUAL_ENV="$_MP_ROOT/.venv"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
export OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-1}"
export MKL_NUM_THREADS="${MKL_NUM_THREADS:-1}"
export MUJOCO_GL="${MUJOCO_GL:-osmesa}"
export PYOPENGL_PLATFORM="${PYOPENGL_PLATFORM:-osmesa}"
unset _MP_ROOT
