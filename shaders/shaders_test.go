package shaders

import (
	"os"
	"os/exec"
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
