#!/bin/bash
# How fast the window answers while the INR lab trains: run under an X server (e.g. Xvfb :97),
#   DISPLAY=:97 benches/latency.sh [NICE]
# Starts the release app with a fresh home (so the INR lab opens and fits its built-in image),
# waits 12 s, clicks 30 times 0.5 s apart on the lab's heading, and times each click from
# xdotool to the end of the frame that took it in (SPARSEFIELD_FRAME_LOG). NICE is the jobs'
# niceness (SPARSEFIELD_JOB_NICE; the app's default is 10). Needs xdotool and python3.
set -eu
NICE=${1:-10}
BIN=$(cd "$(dirname "$0")/.." && pwd)/target/release/sparsefield
WORK=$(mktemp -d)
mkdir -p "$WORK/home" "$WORK/run" && chmod 700 "$WORK/run"
HOME="$WORK/home" XDG_RUNTIME_DIR="$WORK/run" SPARSEFIELD_JOB_NICE=$NICE SPARSEFIELD_FRAME_LOG="$WORK/frames.log" \
  timeout 120 "$BIN" > "$WORK/app.log" 2>&1 &
APP=$!
sleep 12
for _ in $(seq 1 30); do
  date +%s%3N >> "$WORK/clicks.log"
  xdotool mousemove 330 44 click 1
  sleep 0.5
done
sleep 2
kill "$APP" 2> /dev/null || true
python3 - "$WORK" <<'PY'
import statistics, sys
work = sys.argv[1]
frames = [tuple(float(x) for x in line.split()[1:]) for line in open(f"{work}/frames.log")]
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
PY
