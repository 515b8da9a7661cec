#!/usr/bin/env bash
# The main job (README's first command): the lobby patrol in the headless simulator.
# Leaves in out/demo/: camera_annotated.mp4 (robot camera with boxes and labels),
# topdown.mp4 (map), alerts.sqlite + snapshots/ (the alert store), alerts.csv,
# trace.jsonl, events.jsonl and summary.md / summary.json (alerts raised vs expected,
# time spent following, distance driven).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
set +u; source scripts/env.sh; set -u

WORLD="${WORLD:-lobby}"
# simulated seconds: by default the scenario's own time limit (lobby: 180 s)
DURATION="${DURATION:-$(python3 -c "from sim.scenario import load_scenario as l; print(l('$WORLD').time_limit)")}"
OUT="${OUT:-$ROOT/out/demo}"
RTF="${REAL_TIME_FACTOR:-1.0}"
# The run's folder holds faces (snapshots, the camera video, the alert store): owner only.
umask 077
mkdir -p "$OUT"
# A new run starts a new folder; an earlier run's alert store is kept beside it, never lost.
if [ -e "$OUT/alerts.sqlite" ]; then
  keep="$OUT.$(date +%Y%m%d-%H%M%S)"
  mv "$OUT" "$keep" && mkdir -p "$OUT"
  echo "[demo] previous run kept in $keep"
fi

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
export ROS_MASTER_URI="http://127.0.0.1:$PORT" ROS_HOSTNAME=127.0.0.1 ROS_LOG_DIR="$OUT/roslog"
echo "[demo] world=$WORLD duration=${DURATION}s (simulated) output=$OUT"
roslaunch -p "$PORT" launch/patrol_sim.launch world:="$WORLD" record:=true duration:="$DURATION" \
  real_time_factor:="$RTF" output_dir:="$OUT" > "$OUT/roslaunch.log" 2>&1 || true
# roslaunch exits 0 even when a node dies: judge the run by what it left behind.
python3 -m sim.summary --world "$WORLD" --run-dir "$OUT"
