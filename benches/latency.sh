#!/bin/bash
# How fast the window answers while labs train: run under an X server (e.g. Xvfb :97),
#   DISPLAY=:97 benches/latency.sh [NICE] [inr|rest|edit|nerf|lift|prune|ntk|htl] [BINARY]
# Starts the release app with a fresh home (so the INR lab opens and fits its built-in image) and
# waits 12 s. With `rest`, it cancels the fit and clicks while the INR views sharpen at rest. With `edit`, it then opens the INR edit lab and starts its operator on the INR lab's
# snapshot (the lab on screen runs first, the fit waits; the zoom view computes on the CPU under
# lavapipe); with `nerf` or `lift` it opens that lab and starts its training; with `prune`, `ntk`
# or `htl` it opens that lab, whose live analysis starts by itself. Then it clicks 30 times 0.5 s apart on a label, and times each click from xdotool to
# the end of the frame that took it in (SPARSEFIELD_FRAME_LOG); it also reports each job's steps
# per second meanwhile. NICE is the jobs' niceness (SPARSEFIELD_JOB_NICE; the app's default is
# 10). The window is 1400×860 at the origin (no window manager). Needs xdotool and python3.
set -eu
NICE=${1:-10}
SCENARIO=${2:-inr}
BIN=${3:-$(cd "$(dirname "$0")/.." && pwd)/target/release/sparsefield}
WORK=$(mktemp -d)
mkdir -p "$WORK/home" "$WORK/run" && chmod 700 "$WORK/run"
HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" SPARSEFIELD_JOB_NICE=$NICE SPARSEFIELD_FRAME_LOG="$WORK/frames.log" \
  timeout 120 "$BIN" > "$WORK/app.log" 2>&1 &
APP=$!
sleep 12
# Where the clicks land: the INR lab's heading, or the app's name in the top bar.
TARGET="330 44"
# The lab list's rows, and each scenario's start button.
case "$SCENARIO" in
  inr) ;;
  rest) xdotool mousemove 595 12 click 1 ;;
  edit) xdotool mousemove 70 92 click 1; sleep 2; xdotool mousemove 350 44 click 1 ;;
  nerf) xdotool mousemove 70 119 click 1; sleep 2; xdotool mousemove 33 610 click 1 ;;
  lift) xdotool mousemove 70 146 click 1; sleep 2; xdotool mousemove 478 44 click 1 ;;
  prune) xdotool mousemove 70 200 click 1 ;;
  ntk) xdotool mousemove 70 227 click 1 ;;
  htl) xdotool mousemove 70 254 click 1 ;;
  *) echo "unknown scenario $SCENARIO" >&2; exit 2 ;;
esac
if [ "$SCENARIO" != inr ] && [ "$SCENARIO" != rest ]; then
  sleep 4
  TARGET="40 12"
fi
for _ in $(seq 1 30); do
  date +%s%3N >> "$WORK/clicks.log"
  xdotool mousemove $TARGET click 1
  sleep 0.5
done
sleep 2
kill "$APP" 2> /dev/null || true
python3 - "$WORK" <<'PY'
import statistics, sys
work = sys.argv[1]
lines = [line.split() for line in open(f"{work}/frames.log")]
frames = [tuple(float(x) for x in f[1:]) for f in lines if f[0] == "frame"]
jobs = [(float(f[1]), int(f[2]), f[3] == "1", f[4]) for f in lines if f[0] == "job"]
clicks = [int(line) for line in open(f"{work}/clicks.log")]
latency = []
for t in clicks:
    frame = next(((s, d) for s, d, c in frames if c > 0 and s >= t - 5), None)
    if frame:
        latency.append(frame[0] + frame[1] - t)
window = [(s, d) for s, d, _ in frames if clicks[0] <= s <= clicks[-1] + 500]
gaps = [b[0] - (a[0] + a[1]) for a, b in zip(window, window[1:])]
print(f"clicks taken in: {len(latency)}/{len(clicks)}; latency median {statistics.median(latency):.0f} ms, "
      f"worst {max(latency):.0f} ms; {len(window)} frames, longest gap between frames {max(gaps):.0f} ms")
for name in sorted({j[3] for j in jobs}):
    seen = [(t, step) for t, step, _, n in jobs if n == name and clicks[0] <= t <= clicks[-1]]
    if len(seen) >= 2 and seen[-1][0] > seen[0][0]:
        rate = (seen[-1][1] - seen[0][1]) / ((seen[-1][0] - seen[0][0]) / 1000)
        print(f"job {name}: {rate:.2f} steps/s while clicking (step {seen[0][1]} to {seen[-1][1]})")
PY
