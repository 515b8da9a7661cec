#!/usr/bin/env bash
# Opt-in check (not in CI) that the worlds work in Gazebo itself: `make gazebo-check`.
#
# Gazebo and gazebo_ros cannot be installed on Debian 12, so this builds a Debian 11
# (bullseye) root with debootstrap, installs Gazebo 11 there, and for every world renders
# camera frames with gzserver under Xvfb (llvmpipe) from static cameras placed where the
# robot's camera would be, 2.5 m in front of actors (scripts/gazebo_check.py chooses the
# poses with the headless simulator). The project's FaceDetector must then find the faces
# the headless simulator says are in view, and the classifier (once trained weights are
# there) must label them as the scenario expects. Side-by-side Gazebo | MuJoCo images and a
# report.json are left in the output folder.
#
#   sudo bash scripts/gazebo_check.sh [OUT]        (default OUT: out/gazebo_check)
#
# Needs root (debootstrap, chroot, mounts) and Debian's package archive. Measured run time
# on the 2-core development machine: 252 s for the first run, which builds the root (1.3 GB
# on disk), 90 s for later runs, which reuse it (GAZEBO_CHROOT, default
# /var/tmp/mask_patrol_bullseye). Result there: all 14 expected faces found in Gazebo's
# frames, in all four worlds.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHROOT="${GAZEBO_CHROOT:-/var/tmp/mask_patrol_bullseye}"
OUT="$(realpath -m "${1:-$ROOT/out/gazebo_check}")"
SECONDS_PER_WORLD="${GAZEBO_SECONDS:-20}"
say() { printf '[gazebo-check] %s\n' "$*"; }
started=$(date +%s)

if [ "$(id -u)" -ne 0 ]; then
  echo "gazebo_check.sh needs root (debootstrap, chroot, mount): run it with sudo" >&2
  exit 2
fi

# --- 1. a Debian 11 root with Gazebo 11 -------------------------------------------------
if [ ! -x "$CHROOT/usr/bin/gzserver" ]; then
  command -v debootstrap >/dev/null || { apt-get update -qq; apt-get install -y -qq debootstrap >/dev/null; }
  # Use the same Debian mirror as this machine's apt, if it names one.
  mirror="$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null | head -1 | tr -d ' ' || true)"
  say "building a Debian 11 root in $CHROOT (first run only)..."
  debootstrap --variant=minbase bullseye "$CHROOT" ${mirror:+"$mirror"} >"$CHROOT.debootstrap.log" 2>&1 \
    || { tail -20 "$CHROOT.debootstrap.log"; exit 1; }
  mount -t proc proc "$CHROOT/proc"
  trap 'umount "$CHROOT/proc" 2>/dev/null || true' EXIT
  say "installing gazebo, xvfb and Mesa in it..."
  chroot "$CHROOT" /bin/bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && \
    apt-get install -y -qq --no-install-recommends gazebo gazebo-plugin-base xvfb libgl1-mesa-dri xauth >/dev/null"
  umount "$CHROOT/proc"
  trap - EXIT
fi

# --- 2. the check worlds and what the headless simulator sees ---------------------------
rm -rf "$OUT"
mkdir -p "$OUT"
cd "$ROOT"
set +u; source scripts/env.sh; set -u
python3 scripts/gazebo_check.py prepare "$OUT" /check

# --- 3. Gazebo renders them -------------------------------------------------------------
mkdir -p "$CHROOT/check" "$CHROOT/mask_patrol_worlds"
# gzserver talks to its own master on localhost: a minbase root may lack /etc/hosts.
grep -qs localhost "$CHROOT/etc/hosts" || printf '127.0.0.1 localhost\n::1 localhost\n' >> "$CHROOT/etc/hosts"
cleanup() {
  for m in "$CHROOT/check" "$CHROOT/mask_patrol_worlds" "$CHROOT/dev" "$CHROOT/proc"; do
    umount "$m" 2>/dev/null || true
  done
}
trap cleanup EXIT
mount -t proc proc "$CHROOT/proc"
mount --bind /dev "$CHROOT/dev"
mount --bind "$OUT" "$CHROOT/check"
mount --bind -o ro "$ROOT/worlds" "$CHROOT/mask_patrol_worlds"
display=90
for dir in "$OUT"/*/; do
  world="$(basename "$dir")"
  display=$((display + 1))
  say "gzserver: $world (${SECONDS_PER_WORLD} s wall)"
  chroot "$CHROOT" /bin/bash -c "
    export GAZEBO_MODEL_PATH=/mask_patrol_worlds/models HOME=/tmp DISPLAY=:$display
    export GAZEBO_MASTER_URI=http://127.0.0.1:11345 GAZEBO_IP=127.0.0.1
    Xvfb :$display -screen 0 1280x1024x24 >/tmp/xvfb.log 2>&1 & xvfb=\$!
    for i in \$(seq 50); do [ -e /tmp/.X11-unix/X$display ] && break; sleep 0.2; done
    timeout -k 5 $SECONDS_PER_WORLD gzserver --verbose /check/$world/${world}_check.world >/check/$world/gzserver.log 2>&1 || true
    kill \$xvfb 2>/dev/null || true
    wait \$xvfb 2>/dev/null || true
  "
done
cleanup
trap - EXIT

# --- 4. the project's detector and classifier on Gazebo's frames -------------------------
status=0
python3 scripts/gazebo_check.py judge "$OUT" || status=$?
say "run time: $(( $(date +%s) - started )) s"
exit $status
