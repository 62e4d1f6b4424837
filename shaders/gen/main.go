// Command gen compiles chnet's GLSL compute shaders into the SPIR-V files that shaders/ embeds,
// and writes kernels.go, the table of kernel names and binding counts.
//
//	go generate ./shaders        # regenerate (needs glslc)
//	go run ./shaders/gen -check  # exit 1 if the committed files differ from a fresh build
//
// Output is deterministic (no debug info, fixed flags, sorted tables), so CI can regenerate and
// compare byte for byte.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// variant is one compiled kernel: a source file with preprocessor definitions.
type variant struct {
	name     string
	source   string
	defines  []string
	bindings int
	doc      string
}

// variants is the kernel table. Each name is the .spv file and the constant in kernels.go.
var variants = []variant{
	{"elementwise_fill", "elementwise.comp", []string{"ARITY=1"}, 1, "dst = alpha"},
	{"elementwise_unary", "elementwise.comp", []string{"ARITY=2"}, 2, "copy, relu, sigmoid, abs, neg, axpby, expand"},
	{"elementwise_binary", "elementwise.comp", []string{"ARITY=3"}, 3, "add, sub, mul, div, unary gradients, bce"},
	{"elementwise_ternary", "elementwise.comp", []string{"ARITY=4"}, 4, "bce gradient"},
	{"reduce_sum_chunks", "reduce.comp", []string{"SUM_CHUNKS"}, 2, "partial sums over chunks of a batch-strided tensor"},
	{"reduce_sum_rows", "reduce.comp", []string{"SUM_ROWS"}, 2, "sum each row of partials, one workgroup per row"},
	{"reduce_sum_cols", "reduce.comp", []string{"SUM_COLS"}, 2, "sum each row of partials, one invocation per row"},
	{"max_pool2d", "max_pool2d.comp", nil, 2, "max pooling"},
	{"max_pool2d_grad", "max_pool2d_grad.comp", nil, 3, "max pooling gradient (gather)"},
	{"avg_pool2d", "avg_pool2d.comp", nil, 2, "average pooling"},
	{"avg_pool2d_grad", "avg_pool2d_grad.comp", nil, 2, "average pooling gradient (gather)"},
	{"resize_bilinear", "resize_bilinear.comp", nil, 3, "bilinear resize from tap tables"},
	{"resize_bilinear_grad", "resize_bilinear_grad.comp", nil, 3, "bilinear resize gradient (gather)"},
	{"batch_norm2d_stats", "batch_norm2d.comp", []string{"BN_STATS"}, 7, "Welford partials per channel chunk; the last merges them, running statistics"},
	{"batch_norm2d_apply", "batch_norm2d.comp", []string{"BN_APPLY"}, 7, "normalise, add a residual, ReLU"},
	{"batch_norm2d_grad_sums", "batch_norm2d_grad.comp", []string{"BNG_SUMS"}, 10, "partial sums of g and g*(x-mean), ReLU mask; the last: scale and shift gradients"},
	{"batch_norm2d_grad_apply", "batch_norm2d_grad.comp", []string{"BNG_APPLY"}, 10, "input gradient, ReLU mask"},
	{"structure_loss_box_rows", "structure_loss.comp", []string{"SL_BOX_ROWS"}, 2, "31-wide row box sums of the mask"},
	{"structure_loss_weight", "structure_loss.comp", []string{"SL_WEIGHT"}, 3, "weight map from column box sums"},
	{"structure_loss_terms", "structure_loss.comp", []string{"SL_TERMS"}, 4, "per-image partial sums"},
	{"structure_loss_final", "structure_loss.comp", []string{"SL_FINAL"}, 3, "per-image sums and the batch loss"},
	{"structure_loss_grad", "structure_loss.comp", []string{"SL_GRAD"}, 6, "loss gradient"},
	{"sgd", "sgd.comp", nil, 7, "SGD step with momentum, nesterov, weight decay, non-finite guard, loss-scale skip"},
	{"loss_scale_check", "loss_scale.comp", []string{"LS_CHECK"}, 2, "flag non-finite values (dynamic loss scaling)"},
	{"loss_scale_update", "loss_scale.comp", []string{"LS_UPDATE"}, 1, "advance the loss scale after a step"},
	{"conv2d", "conv2d.comp", nil, 4, "convolution as an implicit GEMM"},
	{"conv2d_1x1", "conv2d.comp", []string{"CONV1X1"}, 4, "1x1 stride-1 convolution as a GEMM"},
	{"conv2d_bn_stats", "conv2d.comp", []string{"BN_STATS"}, 10, "convolution, batch-norm statistics of its output in the epilogue"},
	{"conv2d_1x1_bn_stats", "conv2d.comp", []string{"CONV1X1", "BN_STATS"}, 10, "1x1 convolution, batch-norm statistics of its output in the epilogue"},
	{"conv2d_sum_bn_stats", "conv2d.comp", []string{"SUM_INPUT", "BN_STATS"}, 10, "convolution of a sum of two inputs, batch-norm statistics in the epilogue"},
	{"conv2d_act", "conv2d.comp", []string{"CONV_ACT"}, 5, "convolution with a residual and ReLU epilogue (folded batch norm)"},
	{"conv2d_act_1x1", "conv2d.comp", []string{"CONV1X1", "CONV_ACT"}, 5, "1x1 stride-1 convolution with the residual and ReLU epilogue"},
	{"conv2d_grad_input", "conv2d_grad_input.comp", nil, 3, "input gradient as a transposed implicit GEMM"},
	{"conv2d_grad_input_1x1", "conv2d_grad_input.comp", []string{"CONV1X1"}, 3, "1x1 stride-1 input gradient as a GEMM"},
	{"conv2d_grad_weight", "conv2d_grad_weight.comp", nil, 5, "weight gradient, split-K implicit GEMM"},
	{"conv2d_grad_weight_1x1", "conv2d_grad_weight.comp", []string{"CONV1X1"}, 5, "1x1 stride-1 weight gradient, split-K GEMM"},
	{"conv2d_grad_weight_sum", "conv2d_grad_weight.comp", []string{"SUM_INPUT"}, 6, "weight gradient of a convolution of a sum of two inputs"},
	{"conv2d_mixed", "conv2d.comp", []string{"HALF"}, 4, "convolution of fp16 x and w, fp32 sums and output"},
	{"conv2d_mixed_1x1", "conv2d.comp", []string{"CONV1X1", "HALF"}, 4, "1x1 stride-1 convolution of fp16 x and w, fp32 output"},
	{"conv2d_mixed_to_half", "conv2d.comp", []string{"HALF", "HALF_OUT"}, 4, "convolution of fp16 x and w, fp32 sums, fp16 output"},
	{"conv2d_mixed_to_half_1x1", "conv2d.comp", []string{"CONV1X1", "HALF", "HALF_OUT"}, 4, "1x1 stride-1 convolution of fp16 x and w, fp16 output"},
	{"conv2d_grad_input_mixed", "conv2d_grad_input.comp", []string{"HALF"}, 3, "input gradient of fp16 dy and w, fp32 sums and output"},
	{"conv2d_grad_input_mixed_1x1", "conv2d_grad_input.comp", []string{"CONV1X1", "HALF"}, 3, "1x1 stride-1 input gradient of fp16 dy and w, fp32 output"},
	{"conv2d_grad_input_mixed_to_half", "conv2d_grad_input.comp", []string{"HALF", "HALF_OUT"}, 3, "input gradient of fp16 dy and w, fp32 sums, fp16 output"},
	{"conv2d_grad_input_mixed_to_half_1x1", "conv2d_grad_input.comp", []string{"CONV1X1", "HALF", "HALF_OUT"}, 3, "1x1 stride-1 input gradient of fp16 dy and w, fp16 output"},
	{"conv2d_grad_weight_mixed", "conv2d_grad_weight.comp", []string{"HALF"}, 5, "weight gradient of fp16 x and dy, split-K, fp32 sums and output"},
	{"conv2d_grad_weight_mixed_1x1", "conv2d_grad_weight.comp", []string{"CONV1X1", "HALF"}, 5, "1x1 stride-1 weight gradient of fp16 x and dy, fp32 output"},
	{"matmul", "matmul.comp", nil, 3, "batched matrix product with optional transposes"},
	{"softmax", "softmax.comp", []string{"SOFTMAX"}, 2, "softmax over the last dimension"},
	{"softmax_grad", "softmax.comp", []string{"SOFTMAX_GRAD"}, 3, "softmax gradient"},
	{"layer_norm", "layer_norm.comp", []string{"LN"}, 6, "layer normalisation over the last dimension"},
	{"layer_norm_grad_rows", "layer_norm.comp", []string{"LN_GRAD_ROWS"}, 6, "layer norm input gradient"},
	{"layer_norm_grad_cols", "layer_norm.comp", []string{"LN_GRAD_COLS"}, 5, "layer norm scale/shift gradient partials"},
	{"permute", "permute.comp", nil, 2, "permutation of dimensions"},
	{"half_from_float", "half_convert.comp", []string{"TO_HALF"}, 2, "fp32 to packed fp16, round to nearest even"},
	{"half_to_float", "half_convert.comp", nil, 2, "packed fp16 to fp32, exact"},
	{"matmul_mixed", "matmul_mixed.comp", nil, 3, "fp16 x fp16 matrix product, fp32 accumulation and result"},
	{"matmul_mixed_coopmat", "matmul_mixed_coopmat.comp", nil, 3, "matmul_mixed on NV cooperative matrices (tensor cores)"},
	{"matmul_mixed_coopmat_emulated", "matmul_mixed_coopmat.comp", []string{"EMULATE"}, 3, "the tensor-core kernel with scalar fragments, to test it on any device"},
	{"conv2d_mixed_coopmat", "matmul_mixed_coopmat.comp", []string{"CONV"}, 4, "conv2d_mixed's forward convolution on NV cooperative matrices (tensor cores)"},
	{"conv2d_mixed_coopmat_emulated", "matmul_mixed_coopmat.comp", []string{"CONV", "EMULATE"}, 4, "the tensor-core convolution with scalar fragments, to test it on any device"},
}

// unoptimized kernels are compiled without spirv-opt: it has miscompiled cooperative-matrix
// code (llama.cpp #10734), and the tensor-core kernels are not run in CI to catch that.
var unoptimized = map[string]bool{"matmul_mixed_coopmat": true, "conv2d_mixed_coopmat": true}

// glslcFlags target Vulkan 1.2 (SPIR-V 1.5) with spirv-opt's -O, except for the kernels in
// unoptimized.
var glslcFlags = []string{"--target-env=vulkan1.2", "-O", "-fshader-stage=compute"}

func main() {
	dir := flag.String("dir", ".", "the shaders directory")
	checkOnly := flag.Bool("check", false, "compare a fresh build with the committed files instead of writing")
	flag.Parse()
	if err := run(*dir, *checkOnly); err != nil {
		fmt.Fprintln(os.Stderr, "shaders/gen:", err)
		os.Exit(1)
	}
}

func run(dir string, checkOnly bool) error {
	if _, err := exec.LookPath("glslc"); err != nil {
		return fmt.Errorf("glslc not found (Debian: apt-get install glslc): %w", err)
	}
	out := map[string][]byte{}
	var mu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, runtime.NumCPU())
	var wg sync.WaitGroup
	for _, v := range variants {
		wg.Add(1)
		go func(v variant) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			spv, err := compile(dir, v)
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out["spv/"+v.name+".spv"] = spv
		}(v)
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	table, err := kernelTable()
	if err != nil {
		return err
	}
	out["kernels.go"] = table

	existing, _ := filepath.Glob(filepath.Join(dir, "spv", "*.spv"))
	var stale []string
	for _, p := range existing {
		rel := "spv/" + filepath.Base(p)
		if _, ok := out[rel]; !ok {
			stale = append(stale, rel)
		}
	}
	if checkOnly {
		var diffs []string
		for rel, want := range out {
			got, err := os.ReadFile(filepath.Join(dir, rel))
			if err != nil || !bytes.Equal(got, want) {
				diffs = append(diffs, rel)
			}
		}
		diffs = append(diffs, stale...)
		sort.Strings(diffs)
		if len(diffs) > 0 {
			return fmt.Errorf("generated files are out of date (run go generate ./shaders): %s", strings.Join(diffs, ", "))
		}
		return nil
	}
	if err := os.MkdirAll(filepath.Join(dir, "spv"), 0o755); err != nil {
		return err
	}
	for rel, data := range out {
		if err := os.WriteFile(filepath.Join(dir, rel), data, 0o644); err != nil {
			return err
		}
	}
	for _, rel := range stale {
		if err := os.Remove(filepath.Join(dir, rel)); err != nil {
			return err
		}
	}
	return nil
}

func compile(dir string, v variant) ([]byte, error) {
	tmp, err := os.CreateTemp("", "chnet-*.spv")
	if err != nil {
		return nil, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	var args []string
	for _, f := range glslcFlags {
		if f != "-O" || !unoptimized[v.name] {
			args = append(args, f)
		}
	}
	for _, d := range v.defines {
		args = append(args, "-D"+d)
	}
	args = append(args, "-I", ".", "-o", tmp.Name(), v.source)
	cmd := exec.Command("glslc", args...)
	cmd.Dir = dir // relative source paths: nothing machine-specific reaches the output
	if msg, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("glslc %s (%s): %v\n%s", v.source, v.name, err, msg)
	}
	return os.ReadFile(tmp.Name())
}

func kernelTable() ([]byte, error) {
	sorted := append([]variant(nil), variants...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].name < sorted[j].name })
	var b bytes.Buffer
	b.WriteString("// Code generated by shaders/gen; DO NOT EDIT.\n\npackage shaders\n\n")
	b.WriteString("// Kernel names, one per compiled variant (spv/<name>.spv).\nconst (\n")
	for _, v := range sorted {
		fmt.Fprintf(&b, "\t%s = %q // %s: %s %s\n", goName(v.name), v.name, v.doc, v.source, strings.Join(v.defines, " "))
	}
	b.WriteString(")\n\n// Bindings is the number of storage buffers each kernel binds.\nvar Bindings = map[string]int{\n")
	for _, v := range sorted {
		fmt.Fprintf(&b, "\t%s: %d,\n", goName(v.name), v.bindings)
	}
	b.WriteString("}\n")
	return format.Source(b.Bytes())
}

// goName turns conv2d_grad_input into Conv2DGradInput.
func goName(s string) string {
	var b strings.Builder
	for _, part := range strings.Split(s, "_") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	name := strings.ReplaceAll(b.String(), "2d", "2D")
	if name == "Sgd" {
		return "SGD" // initialisms in caps
	}
	return name
}
