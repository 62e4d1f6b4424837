#!/bin/sh
# One prepared check of the Vulkan backend on a lent NVIDIA GPU machine (docs: shared/docs/gpu.md).
#
# Here (the CI-like machine, once per session):   sh cmd/vkprobe/gpu-check.sh prepare
#   builds chnet, vkprobe and the ops/vk and vkrt test binaries into .gpubin/ (the GPU machine has
#   no Go) and downloads Debian's Vulkan loader into .gl/ (it has the NVIDIA ICD but no loader).
# There, through the device tool, carrying .gl and .gpubin, with timeout_s ≈ 450:
#   sh cmd/vkprobe/gpu-check.sh run
#   writes under $OUT, each file as soon as its command ends, within 7 minutes in all:
#     summary.txt      one line per result, in this order: training img/s at batch 16 352x352
#                      (with peak device memory), inference at batch 16, inference at batch 1,
#                      the 4096³ GEMM in TFLOP/s in fp32 and mixed precision (fp16 inputs, fp32
#                      sums: the tensor-core kernel where the device offers it, and the scalar
#                      one), then PyTorch's fp32 figures on the same GPU when a Python with CUDA
#                      torch is there;
#     train-b16.txt, infer-b16.txt, infer-b1.txt, profile-train.txt (per-kernel GPU time), gemm.txt,
#     torch-fp32.txt, torch-b1.txt, probe.txt, nvidia-smi.txt.
#   sh cmd/vkprobe/gpu-check.sh run-tests   (a separate call, ~6 minutes)
#   the correctness tests on NVIDIA: every kernel against the CPU (the mixed-precision GEMM and
#   fp16 conversions included: the only run the cooperative-matrix kernel gets), a whole CHNet
#   step, vkrt.
set -u
mode=${1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

setup() {
	out=${OUT:-/tmp/gpu-out}
	mkdir -p "$out"
	if command -v nvidia-smi >/dev/null 2>&1; then # never over this machine's own libraries
		for f in .gl/*.deb; do dpkg -x "$f" /; done
		ldconfig
	fi
	export CHNET_VK_TIMEOUT=60s CHNET_REQUIRE_VULKAN=1
	if ! .gpubin/vkprobe >/dev/null 2>&1; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	fi
	nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv > "$out/nvidia-smi.txt" 2>&1
}

case "$mode" in
prepare)
	set -e
	mkdir -p .gpubin
	exclude=$(git rev-parse --git-path info/exclude)
	mkdir -p "$(dirname "$exclude")"
	for p in /.gpubin/ /.gl/; do
		grep -qx "$p" "$exclude" 2>/dev/null || echo "$p" >> "$exclude"
	done
	go build -o .gpubin/chnet ./cmd/chnet
	go build -o .gpubin/vkprobe ./cmd/vkprobe
	go test -c -o .gpubin/vk.test ./ops/vk
	go test -c -o .gpubin/vkrt.test ./internal/vkrt
	if ! ls .gl/libvulkan1_*.deb >/dev/null 2>&1; then
		mkdir -p .gl /tmp/amd64/partial
		o='-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/amd64'
		apt-get $o update >/dev/null
		(cd .gl && apt-get $o download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2)
	fi
	ls -la .gpubin .gl
	;;
run)
	start=$(date +%s)
	setup
	sum="$out/summary.txt"
	head -2 "$out/nvidia-smi.txt" | tail -1 > "$sum"
	budget=${CHNET_CHECK_BUDGET:-420} # seconds for everything, setup included
	# Smaller shapes only to try the script on lavapipe: CHNET_CHECK_SIZE=32 CHNET_CHECK_BATCH=2.
	size=${CHNET_CHECK_SIZE:-352} batch=${CHNET_CHECK_BATCH:-16}
	# step NAME LIMIT CMD...: runs CMD with at most LIMIT seconds (less if the budget is short),
	# writes its output to NAME.txt and its result lines to the summary at once.
	step() {
		name=$1 limit=$2
		shift 2
		left=$((budget - ($(date +%s) - start) - 5))
		if [ "$left" -lt 20 ]; then
			echo "$name: skipped, ${left}s of the budget left" >> "$sum"
			return
		fi
		[ "$limit" -gt "$left" ] && limit=$left
		timeout "$limit" "$@" > "$out/$name.txt" 2>&1
		rc=$?
		echo "exit $rc after $(($(date +%s) - start)) s" >> "$out/$name.txt"
		grep -E 'img/s|"images_per_s"|TFLOP/s' "$out/$name.txt" | sed -e 's/"step_ms": \[[^]]*\], //' -e "s/^/$name: /" >> "$sum"
		[ "$rc" -ne 0 ] && echo "$name: exit $rc (limit ${limit}s); see $name.txt" >> "$sum"
	}
	chnet=".gpubin/chnet --backend vulkan bench speed --size $size"
	# 1-3. The numbers that matter, first: training img/s at batch 16 (and peak memory), inference.
	step train-b16 120 $chnet --mode train --batch "$batch" --warmup 2 --repeat 5
	step infer-b16 60 $chnet --mode infer --batch "$batch" --warmup 2 --repeat 8
	step infer-b1 45 $chnet --mode infer --batch 1 --warmup 3 --repeat 20
	# 4. Where the training step's GPU time goes, per kernel (timestamp queries).
	step profile-train 75 $chnet --mode train --batch "$batch" --warmup 1 --repeat 2 --profile
	# 5. The GEMM alone at 4096³, fp32 against mixed precision (ops/vk BenchmarkMatMulPrecision;
	#    about 10 s on an H100: setup, then 30 products per kernel).
	step gemm 40 env CHNET_BENCH_GEMM="${CHNET_CHECK_GEMM:-4096}" .gpubin/vk.test -test.run '^$' -test.bench MatMulPrecision -test.benchtime 30x
	# 6. PyTorch on the same GPU, fp32 (TF32 off), when a Python with CUDA torch is there.
	py=""
	for p in python3 /usr/bin/python3 /usr/local/bin/python3; do
		if timeout 30 "$p" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
			py=$p
			break
		fi
	done
	if [ -n "$py" ]; then
		step torch-fp32 90 "$py" tools/torchref/chnet_speed.py --device cuda --batch "$batch" --size "$size" --mode both --precision fp32 --warmup 3 --repeat 5
		step torch-b1 40 "$py" tools/torchref/chnet_speed.py --device cuda --batch 1 --size "$size" --mode infer --precision fp32 --warmup 3 --repeat 20
	else
		echo "torch: no Python with CUDA torch here" >> "$sum"
	fi
	# 7. The device's capabilities, if time remains.
	step probe 20 .gpubin/vkprobe
	echo "done after $(($(date +%s) - start)) s" >> "$sum"
	cat "$sum"
	;;
run-tests)
	setup
	# Correctness on NVIDIA: every kernel vs the CPU (incl. > 128 MiB cases), the GPU tile
	# configurations, the small net, a whole CHNet step, the planning device against the real
	# one; the runtime's own tests. The validation layer is not installed there, so
	# TestValidation* are left to CI.
	timeout 240 .gpubin/vk.test -test.run 'TestCompareCPU|TestCompareNetCPU|TestGPUTiles|TestCHNetStep|TestLargeTensors|TestErrors|TestUnreleased|TestPushBlocks|TestPlanMatchesDevice|TestSpeedProfile|TestStepNonFinite|TestHalf|TestMatMulMixed|TestMixedErrors|TestBatchNormCountersReset' \
		-test.v > "$out/tests.txt" 2>&1
	echo "exit $?" >> "$out/tests.txt"
	timeout 60 .gpubin/vkrt.test -test.v -test.run 'TestDevices|TestUploadDownload|TestDispatch|TestArena|TestNoPush|TestPlanMatchesDevice|TestFramePool|TestProfile' > "$out/vkrt-tests.txt" 2>&1
	echo "exit $?" >> "$out/vkrt-tests.txt"
	tail -n 3 "$out/tests.txt" "$out/vkrt-tests.txt"
	;;
*)
	echo "usage: sh cmd/vkprobe/gpu-check.sh prepare|run|run-tests" >&2
	exit 2
	;;
esac
