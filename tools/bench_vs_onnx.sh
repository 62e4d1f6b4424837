#!/usr/bin/env bash
# chnet's CPU inference beside ONNX Runtime (issue 10), alternating in one run on one machine:
# round after round, chnet then ONNX Runtime, each timing --repeat steps after --warmup, so
# that a change in the machine's load touches both alike. The model ONNX Runtime runs is the
# official-architecture CHNet exported by tools/torchref/export_onnx.py (Debian's python3-torch,
# opset 13) with random weights; chnet runs its own released CHNet with random weights.
#   tools/bench_vs_onnx.sh [--batch 16] [--size 352] [--threads 2] [--rounds 3] [--repeat 3] [--warmup 1]
# Needs Go (or CHNET_BIN), /usr/bin/python3 with torch (PYTHON), node, and onnxruntime-node
# (ORT_MODULES: a node_modules folder holding it; installed into a temporary folder with
# `npm install --ignore-scripts onnxruntime-node` when unset). chnet's threads follow
# GOMAXPROCS, set to --threads here.
set -euo pipefail
cd "$(dirname "$0")/.."
batch=16 size=352 threads=2 rounds=3 repeat=3 warmup=1
while [ $# -gt 0 ]; do
  case "$1" in
    --batch) batch=$2; shift 2 ;;
    --size) size=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --repeat) repeat=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 64 ;;
  esac
done
py=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
bin=${CHNET_BIN:-}
if [ -z "$bin" ]; then
  bin=$work/chnet
  GOEXPERIMENT=simd go build -o "$bin" ./cmd/chnet
fi
mods=${ORT_MODULES:-}
if [ -z "$mods" ]; then
  (cd "$work" && npm install --silent --ignore-scripts onnxruntime-node >/dev/null)
  mods=$work/node_modules
fi
"$py" tools/torchref/export_onnx.py --size "$size" --out "$work/chnet.onnx" 2>/dev/null
for r in $(seq "$rounds"); do
  GOMAXPROCS=$threads "$bin" --backend cpu bench speed --json --mode infer --batch "$batch" --size "$size" \
    --repeat "$repeat" --warmup "$warmup" | "$py" -c 'import json,sys; print(json.dumps(json.load(sys.stdin)[0]))' >>"$work/chnet.jsonl"
  NODE_PATH=$mods node tools/ortref/ort_speed.js "$work/chnet.onnx" --batch "$batch" --size "$size" \
    --threads "$threads" --repeat "$repeat" --warmup "$warmup" >>"$work/ort.jsonl"
done
"$py" - "$work/chnet.jsonl" "$work/ort.jsonl" <<'PY'
import json, statistics, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
theirs = [json.loads(l) for l in open(sys.argv[2])]
print("| round | chnet ms/step | ONNX Runtime ms/step | ORT time / chnet time |")
print("|---:|---:|---:|---:|")
for i, (o, t) in enumerate(zip(ours, theirs), 1):
    print("| %d | %.1f | %.1f | %.2f× |" % (i, o["median_ms"], t["median_ms"], t["median_ms"] / o["median_ms"]))
om = statistics.median(o["median_ms"] for o in ours)
tm = statistics.median(t["median_ms"] for t in theirs)
o, t = ours[0], theirs[0]
print("| median | %.1f | %.1f | **%.2f×** |" % (om, tm, tm / om))
print("infer b%d %d²; chnet on %s; ONNX Runtime %s, %d threads (a ratio above 1: chnet is faster)" % (
    o["batch"], o["size"], o["device"], t["version"], t["threads"]))
PY
