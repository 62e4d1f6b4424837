#!/bin/sh
# One prepared check of the Vulkan backend on a lent NVIDIA GPU machine (docs: shared/docs/gpu.md).
#
# Here (the CI-like machine, once per session):   sh cmd/vkprobe/gpu-check.sh prepare
#   builds vkprobe and the ops/vk and vkrt test binaries into .gpubin/ (the GPU machine has no
#   Go) and downloads Debian's Vulkan loader into .gl/ (it has the NVIDIA ICD but no loader).
# There, through the device tool, carrying .gl and .gpubin, with timeout_s ≈ 560:
#   sh cmd/vkprobe/gpu-check.sh run
#   writes probe.txt, tests.txt and bench.txt under $OUT, each as soon as it is done, and keeps
#   inside 9 minutes so a rerun fits the 15-minute budget.
set -u
mode=${1:-}
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root" || exit 1

case "$mode" in
prepare)
	set -e
	mkdir -p .gpubin
	exclude=$(git rev-parse --git-path info/exclude)
	mkdir -p "$(dirname "$exclude")"
	for p in /.gpubin/ /.gl/; do
		grep -qx "$p" "$exclude" 2>/dev/null || echo "$p" >> "$exclude"
	done
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
	out=${OUT:-/tmp/gpu-out}
	mkdir -p "$out"
	for f in .gl/*.deb; do dpkg -x "$f" /; done
	ldconfig
	export CHNET_REQUIRE_VULKAN=1 CHNET_VK_TIMEOUT=60s
	if ! .gpubin/vkprobe >/dev/null 2>&1; then
		export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
	fi
	nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm --format=csv > "$out/nvidia-smi.txt" 2>&1
	# 1. Capabilities, dispatch cost, GEMM rate (~20 s).
	timeout 60 .gpubin/vkprobe -measure -gemm 1024,2048,4096 > "$out/probe.txt" 2>&1
	# 2. Correctness on NVIDIA: every kernel vs the CPU (incl. > 128 MiB cases), the GPU tile
	#    configurations, the small net and a whole CHNet step; the runtime's own tests. The
	#    validation layer is not installed there, so TestValidation* are left to CI.
	timeout 240 .gpubin/vk.test -test.run 'TestCompareCPU|TestCompareNetCPU|TestGPUTiles|TestCHNetStep|TestLargeTensors|TestErrors|TestUnreleased|TestPushBlocks' \
		-test.v > "$out/tests.txt" 2>&1
	echo "exit $?" >> "$out/tests.txt"
	timeout 60 .gpubin/vkrt.test -test.v -test.run 'TestDevices|TestUploadDownload|TestDispatch|TestArena|TestNoPush' > "$out/vkrt-tests.txt" 2>&1
	echo "exit $?" >> "$out/vkrt-tests.txt"
	# 3. Performance at the training size (batch 16, 352x352): GEMM, every CHNet convolution
	#    forward and backward, a whole training step; and the host cost of recording.
	timeout 200 .gpubin/vk.test -test.run XXX -test.bench 'GEMM|Conv2D|RecordElementwise' -test.benchtime 10x > "$out/bench.txt" 2>&1
	timeout 100 .gpubin/vk.test -test.run XXX -test.bench 'CHNetTrainStep' -test.benchtime 5x >> "$out/bench.txt" 2>&1
	# The other register-tile mapping (conv_gemm.glsl AVEC), for comparison.
	echo "== CHNET_VK_AVEC=0" >> "$out/bench.txt"
	CHNET_VK_AVEC=0 timeout 60 .gpubin/vk.test -test.run XXX -test.bench 'GEMM/4096|Conv2D/layer(1_1x1_out|3_3x3)' -test.benchtime 10x >> "$out/bench.txt" 2>&1
	timeout 30 .gpubin/vkrt.test -test.run XXX -test.bench RecordDispatch -test.benchtime 100000x >> "$out/bench.txt" 2>&1
	echo done >> "$out/bench.txt"
	tail -n 3 "$out/tests.txt" "$out/bench.txt"
	;;
*)
	echo "usage: sh cmd/vkprobe/gpu-check.sh prepare|run" >&2
	exit 2
	;;
esac
