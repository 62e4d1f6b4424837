#!/usr/bin/env bash
# Mutation check (issue 12): each mutation below is a plausible bug in the training step's
# arithmetic; the golden and conformance tests must fail on every one. For each, the script
# applies the change to a copy of one source file (refusing to go on if the pattern is not
# there, so a refactor cannot make the check pass vacuously), runs the tests, lists the tests
# that failed, and restores the file.
#
#   tools/mutation_check.sh            # all mutations; prints a Markdown table for RESULTS.md §1
#   tools/mutation_check.sh sgd_wd     # one of them
#
# Needs ../shared (or CHNET_SHARED) and lavapipe; a Vulkan shader mutation also needs glslc.
# It takes 3-5 minutes per mutation on a quiet 2-core machine; logs go to $MUTATION_LOGS
# (default /tmp/chnet-mutations).
set -euo pipefail
cd "$(dirname "$0")/.."
# A long device timeout: on a loaded machine a big lavapipe batch can pass the 2-minute default,
# and a timeout would fail the tests for a reason that is not the mutation.
export GOEXPERIMENT=simd CHNET_REQUIRE_SHARED=1 CHNET_REQUIRE_VULKAN=1 CHNET_VK_TIMEOUT=30m
pkgs=(./chnet ./ops/...)

# name | file | exact text | replacement | what it models
mutations=(
  "sgd_wd|ops/cpu/sgd.go|gi := g[i] + p.WeightDecay*w[i]|gi := g[i]|CPU SGD without weight decay"
  "sgd_nesterov|ops/cpu/sgd.go|if p.Nesterov {|if false {|CPU SGD without the Nesterov term"
  "sgd_momentum|ops/cpu/sgd.go|if p.Momentum != 0 {|if false {|CPU SGD without momentum"
  "bn_grad_mean|ops/cpu/batch_norm2d.go|c0 = float32(-float64(ga[ch])*inv*sg/m +|c0 = float32(+float64(ga[ch])*inv*sg/m +|CPU batch-norm gradient with the mean-of-gradient term's sign swapped"
  "relu_grad|ops/cpu/elementwise.go|if s[i] > 0 {|if s[i] >= 0 {|CPU ReLU gradient passing where the output is 0"
  "bn_relu_mask|ops/cpu/batch_norm2d.go|				if v > 0 {|				if v >= 0 {|CPU batch norm's fused ReLU gradient passing where the output is 0"
  "vk_sgd_wd|shaders/sgd.comp|float gi = g[p.goff + i] + p.wd * wi;|float gi = g[p.goff + i];|Vulkan SGD shader without weight decay"
)

want="${1:-}"
logs=${MUTATION_LOGS:-/tmp/chnet-mutations}
mkdir -p "$logs"
echo "| mutation | what it models | failing tests |"
echo "|---|---|---|"
for m in "${mutations[@]}"; do
  IFS='|' read -r name file from to what <<<"$m"
  [ -n "$want" ] && [ "$want" != "$name" ] && continue
  backup=$(mktemp)
  cp "$file" "$backup"
  restore() { cp "$backup" "$file"; if [[ "$file" == shaders/* ]]; then go generate ./shaders >/dev/null; fi; }
  trap restore EXIT
  FROM="$from" TO="$to" perl -0pi -e 'my $n = s/\Q$ENV{FROM}\E/$ENV{TO}/g; $n == 1 or die "expected 1 match, found $n\n"' "$file" ||
    { echo "mutation $name: pattern not found once in $file" >&2; exit 2; }
  if [[ "$file" == shaders/* ]]; then go generate ./shaders >/dev/null; fi
  log="$logs/$name.log"
  if go test -count=1 -timeout 90m "${pkgs[@]}" >"$log" 2>&1; then
    failed="**none — the tests pass: the mutation survives**"
    status=1
  else
    # top-level failing tests, by package (go test prints a package's output before its FAIL line)
    failed=$(awk '/^--- FAIL: / { t = t (t ? ", " : "") $3 }
                  /^FAIL\t/ { if (t) { sub("github.com/chnet/chnet/", "", $2); out = out (out ? "; " : "") $2 ": " t }; t = "" }
                  END { print out }' "$log")
    if [ -z "$failed" ] || grep -qE '^panic: test timed out|\[build failed\]|\[setup failed\]' "$log"; then
      failed="**not measured: $(grep -m1 -E 'panic|build failed|setup failed|error' "$log")**"
      status=2
    fi
  fi
  echo "| \`$name\` | $what | $failed |"
  restore
  trap - EXIT
  rm -f "$backup"
done
exit "${status:-0}"
