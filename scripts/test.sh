#!/usr/bin/env bash
# The project's test command (README's second command; CI runs it through .ci/run).
# Runs the whole suite: unit, ROS graph and closed-loop scenario tests. Tests that need
# the full developer datasets (../shared/datasets) run too when that folder is present.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
bash scripts/setup.sh
# The torch-free robot install too: tests run the patrol's pipeline in it.
ROBOT=1 bash scripts/setup.sh
set +u; source scripts/env.sh; set -u
DATASETS="${MASK_PATROL_DATASETS:-$ROOT/../shared/datasets}"
if [ -d "$DATASETS/mask-classification" ]; then
  export MASK_PATROL_DATASETS="$DATASETS"
  MARK=""            # everything, the dataset tests included
  echo "[test] datasets found at $DATASETS: running the dataset tests too"
else
  MARK="not dataset"
  echo "[test] no datasets folder: running the default suite"
fi
exec python3 -m pytest -m "$MARK" "$@"
