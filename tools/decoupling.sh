#!/usr/bin/env bash
# The paper's encoder-decoder decoupling study (Section 4, Fig. 3 and 4) with chnet:
#  1. train CHNet, U-Net and Attention U-Net end to end (same Res2Net-50 backbone);
#  2. freeze each trained backbone and train every decoder (CHNet's head, FCN-32s, U-Net's,
#     Attention U-Net's) on it from a random initialisation;
#  3. with --backbone-weights, also the ImageNet-only backbone (Fig. 4(b));
#  4. write summary.md: the test mDice of every backbone × decoder pair.
# Usage: tools/decoupling.sh --data TRAIN --test TEST --out DIR [chnet train flags...]
# e.g.   tools/decoupling.sh --data ../shared/data/covid/train --test ../shared/data/covid/test \
#            --out runs/decoupling --epochs 20 --size 224 --task lung
set -euo pipefail
cd "$(dirname "$0")/.."
data="" test="" out="" task=polyp imagenet="" extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --data) data=$2; shift 2 ;;
    --test) test=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --task) task=$2; extra+=(--task "$2"); shift 2 ;;
    --backbone-weights) imagenet=$2; shift 2 ;;
    *) extra+=("$1"); shift ;;
  esac
done
if [ -z "$data" ] || [ -z "$test" ] || [ -z "$out" ]; then
  echo "usage: tools/decoupling.sh --data TRAIN --test TEST --out DIR [chnet train flags...]" >&2
  exit 64
fi
bin=${CHNET_BIN:-}
if [ -z "$bin" ]; then
  mkdir -p bin
  GOEXPERIMENT=simd go build -o bin/chnet ./cmd/chnet
  bin=bin/chnet
fi
mkdir -p "$out"
pre=()
[ -n "$imagenet" ] && pre=(--backbone-weights "$imagenet")

train() { # train DIR ARGS...: skip a run that already finished, resume one that did not
  local dir=$1; shift
  if [ -f "$dir/checkpoint_final.safetensors" ]; then return; fi
  if [ -f "$dir/checkpoint_latest.safetensors" ]; then
    "$bin" train --out "$dir" --resume
  else
    "$bin" train --out "$dir" --data "$data" --test "$test" "$@" "${extra[@]}"
  fi
}

for arch in chnet unet attunet; do
  train "$out/e2e_$arch" --arch "$arch" "${pre[@]}"
done
backbones=(chnet unet attunet)
for bb in "${backbones[@]}"; do
  for dec in chnet fcn unet attunet; do
    train "$out/${dec}_on_${bb}" --arch "$dec" --freeze-backbone --init-from "$out/e2e_$bb/checkpoint_final.safetensors"
  done
done
if [ -n "$imagenet" ]; then
  train "$out/attunet_on_imagenet" --arch attunet --freeze-backbone --init-from "$imagenet"
  backbones+=(imagenet)
fi

python3 - "$out" "$(basename "$test")" "${backbones[@]}" <<'PY'
import json, os, sys
out, test, backbones = sys.argv[1], sys.argv[2], sys.argv[3:]
decoders = ["chnet", "fcn", "unet", "attunet"]
def score(run):
    p = os.path.join(out, run, "test", test, "metrics.json")
    if not os.path.exists(p):
        return None
    table = json.load(open(p))["table"]
    return next((c["Value"] for c in table if c["Column"] in ("mDice", "Dice")), None)
lines = ["# Decoupling study: test mDice, frozen backbone (rows) × retrained decoder (columns)", "",
         "| backbone trained with | " + " | ".join(decoders) + " |", "|---|" + "---:|" * len(decoders)]
for bb in backbones:
    cells = []
    for dec in decoders:
        v = score(f"{dec}_on_{bb}")
        cells.append("—" if v is None else "%.4f" % v)
    lines.append(f"| {bb} | " + " | ".join(cells) + " |")
lines += ["", "End to end: " + ", ".join("%s %.4f" % (a, score("e2e_" + a)) for a in ("chnet", "unet", "attunet") if score("e2e_" + a) is not None)]
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
