package shaders

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedUpToDate regenerates every kernel with glslc and compares the result with the
// committed spv/*.spv and kernels.go, so a shader edit without `go generate ./shaders` fails CI.
// It needs glslc (Debian: apt-get install glslc) and skips without it unless
// CHNET_REQUIRE_GLSLC=1. The bytes depend on the compiler version: the committed files come from
// Debian 12's glslc (shaderc 2023.2, glslang 11.13), the CI image's.
func TestGeneratedUpToDate(t *testing.T) {
	if _, err := exec.LookPath("glslc"); err != nil {
		if os.Getenv("CHNET_REQUIRE_GLSLC") == "1" {
			t.Fatal("glslc not found")
		}
		t.Skip("glslc not installed: cannot check the generated SPIR-V")
	}
	cmd := exec.Command("go", "run", "./gen", "-check")
	if out, err := cmd.CombinedOutput(); err != nil {
		version, _ := exec.Command("glslc", "--version").CombinedOutput()
		t.Fatalf("%v\n%s\n(this glslc: %s)", err, out, version)
	}
}

func TestEveryKernelIsEmbedded(t *testing.T) {
	for name, n := range Bindings {
		code, err := SPIRV(name)
		if err != nil {
			t.Fatal(err)
		}
		if len(code) < 20 || code[0] != 0x03 || code[1] != 0x02 || code[2] != 0x23 || code[3] != 0x07 {
			t.Errorf("%s: not SPIR-V", name)
		}
		if n < 1 || n > 10 { // vkrt.MaxBindings
			t.Errorf("%s: %d bindings", name, n)
		}
	}
}

// TestSPIRVValid runs spirv-val (Debian: apt-get install spirv-tools) over every embedded kernel
// for the environment they are compiled for. This is the only check the cooperative-matrix
// kernels get without an NVIDIA GPU: lavapipe cannot run them. It skips, loudly, without
// spirv-val unless CHNET_REQUIRE_GLSLC=1 (CI, whose image has both tools).
func TestSPIRVValid(t *testing.T) {
	if _, err := exec.LookPath("spirv-val"); err != nil {
		if os.Getenv("CHNET_REQUIRE_GLSLC") == "1" {
			t.Fatal("spirv-val not found (apt-get install spirv-tools)")
		}
		t.Skip("SPIRV-VAL NOT INSTALLED — the SPIR-V, the cooperative-matrix kernel's included, is not validated here")
	}
	dir := t.TempDir()
	for name := range Bindings {
		code, err := SPIRV(name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, name+".spv")
		if err := os.WriteFile(path, code, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command("spirv-val", "--target-env", "vulkan1.2", path).CombinedOutput(); err != nil {
			t.Errorf("%s: spirv-val: %v\n%s", name, err, out)
		}
	}
	for _, name := range []string{MatmulMixedCoopmat, Conv2DMixedCoopmat} {
		code, err := SPIRV(name)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(code), "SPV_NV_cooperative_matrix") {
			t.Errorf("%s does not declare SPV_NV_cooperative_matrix", name)
		}
	}
}
