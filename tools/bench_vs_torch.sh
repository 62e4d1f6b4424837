#!/usr/bin/env bash
# Whole-model speed of chnet beside PyTorch, measured in the same run on the same machine.
#   tools/bench_vs_torch.sh [--batch 16] [--size 352] [--backend cpu|vulkan] [--device cpu|cuda] [--precision fp32|tf32|amp16]
# chnet runs with --backend (default cpu); PyTorch with --device (default cpu, 2 threads).
# Needs Go (or CHNET_BIN pointing at a built binary) and a Python with torch (PYTHON, default
# /usr/bin/python3: Debian's python3-torch).
set -euo pipefail
cd "$(dirname "$0")/.."
batch=16 size=352 backend=cpu device=cpu precision=fp32 repeat=5 warmup=2 threads=2
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --backend) backend=$2; shift 2 ;;
    --device) device=$2; shift 2 ;;
    --precision) precision=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
py=${PYTHON:-/usr/bin/python3}
bin=${CHNET_BIN:-}
if [ -z "$bin" ]; then
  bin=$(mktemp -d)/chnet
  GOEXPERIMENT=simd go build -o "$bin" ./cmd/chnet
fi
out=$(mktemp -d)
"$bin" --backend "$backend" bench speed --json --batch "$batch" --size "$size" --repeat "$repeat" --warmup "$warmup" > "$out/chnet.json"
"$py" tools/torchref/chnet_speed.py --batch "$batch" --size "$size" --repeat "$repeat" --warmup "$warmup" \
  --device "$device" --threads "$threads" --precision "$precision" > "$out/torch.jsonl"
"$py" - "$out/chnet.json" "$out/torch.jsonl" <<'PY'
import json, sys
ours = {r["mode"]: r for r in json.load(open(sys.argv[1]))}
theirs = {r["mode"]: r for r in map(json.loads, open(sys.argv[2]))}
print("| mode | chnet (%s) ms/step | img/s | PyTorch (%s) ms/step | img/s | PyTorch time / chnet time |" % (
    next(iter(ours.values()))["backend"], next(iter(theirs.values()))["device"]))
print("|---|---:|---:|---:|---:|---:|")
for mode in ("train", "infer"):
    if mode in ours and mode in theirs:
        o, t = ours[mode], theirs[mode]
        print("| %s b%d %d² | %.1f | %.2f | %.1f | %.2f | %.2f× |" % (mode, o["batch"], o["size"], o["median_ms"],
              o["images_per_s"], t["median_ms"], t["images_per_s"], t["median_ms"] / o["median_ms"]))
print("chnet device: %s; PyTorch: %s %s, %d threads" % (next(iter(ours.values()))["device"],
      next(iter(theirs.values()))["backend"], next(iter(theirs.values()))["precision"], next(iter(theirs.values()))["threads"]))
PY
