package vkrt

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestHeaderMatchesVulkan checks vk.h, the declarations chnet uses instead of the Vulkan SDK
// headers, against the system's vulkan_core.h: every structure's size, alignment and field
// offsets, and every constant. It compiles one small C program against each header and
// compares their output, so it needs gcc and libvulkan-dev; without them it skips, unless
// CHNET_REQUIRE_VULKAN_HEADERS=1 (set by .ci/run, which installs them) makes that a failure.
func TestHeaderMatchesVulkan(t *testing.T) {
	skip := func(why string) {
		if os.Getenv("CHNET_REQUIRE_VULKAN_HEADERS") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	const system = "/usr/include/vulkan/vulkan_core.h"
	if _, err := os.Stat(system); err != nil {
		skip("no system Vulkan headers (libvulkan-dev) to compare vk.h with")
	}
	cc, err := exec.LookPath("gcc")
	if err != nil {
		skip("no gcc")
	}
	src, err := os.ReadFile("vk.h")
	if err != nil {
		t.Fatal(err)
	}
	body := checkProgram(t, string(src))
	dir := t.TempDir()
	here, _ := os.Getwd()
	run := func(include string) string {
		c := filepath.Join(dir, "check.c")
		prog := "#include <stdio.h>\n#include <stddef.h>\n" + include + "\nint main(void) {\n" + body + "return 0;\n}\n"
		if err := os.WriteFile(c, []byte(prog), 0o644); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(dir, "check")
		if out, err := exec.Command(cc, "-std=c11", "-I", here, c, "-o", bin).CombinedOutput(); err != nil {
			t.Fatalf("compile against %s: %v\n%s", include, err, out)
		}
		out, err := exec.Command(bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	mine := run("#include \"vk.h\"\n#define CHN_OURS 1")
	theirs := run("#include <vulkan/vulkan.h>")
	ml, tl := strings.Split(mine, "\n"), strings.Split(theirs, "\n")
	if len(ml) != len(tl) {
		t.Fatalf("outputs differ in length: %d vs %d lines", len(ml), len(tl))
	}
	n := 0
	for i := range ml {
		if ml[i] != tl[i] {
			t.Errorf("vk.h: %s; vulkan_core.h: %s", ml[i], tl[i])
		}
		n++
	}
	t.Logf("%d sizes, offsets and constants agree with %s", n-1, system)
}

// checkProgram turns vk.h's structures and constants into printf statements.
func checkProgram(t *testing.T, src string) string {
	var b strings.Builder
	structRe := regexp.MustCompile(`(?s)typedef struct \{(.*?)\} (Vk\w+);`)
	fieldRe := regexp.MustCompile(`(\w+)\s*(\[[^\]]*\])?\s*;`)
	for _, m := range structRe.FindAllStringSubmatch(src, -1) {
		fields, name := m[1], m[2]
		fmt.Fprintf(&b, "printf(\"sizeof %s %%zu align %%zu\\n\", sizeof(%s), _Alignof(%s));\n", name, name, name)
		if name == "VkPhysicalDeviceProperties" || name == "VkPhysicalDeviceFeatures" {
			continue // opaque here; their sizes are what matter
		}
		for _, line := range strings.Split(fields, "\n") {
			line = strings.TrimSpace(strings.SplitN(line, "//", 2)[0])
			if line == "" {
				continue
			}
			// "uint8_t major, minor, subminor, patch;" declares several fields.
			decl := strings.TrimSuffix(line, ";")
			parts := strings.Split(decl, ",")
			first := fieldRe.FindStringSubmatch(parts[0] + ";")
			if first == nil {
				t.Fatalf("cannot parse field %q of %s", line, name)
			}
			names := []string{first[1]}
			for _, p := range parts[1:] {
				names = append(names, strings.TrimSpace(p))
			}
			for _, f := range names {
				fmt.Fprintf(&b, "printf(\"offsetof %s.%s %%zu\\n\", offsetof(%s, %s));\n", name, f, name, f)
			}
		}
	}
	b.WriteString("#ifdef CHN_OURS\nprintf(\"shaderInt64 %d\\n\", CHN_FEATURE_SHADER_INT64 * 4);\n#else\n" +
		"printf(\"shaderInt64 %d\\n\", (int)offsetof(VkPhysicalDeviceFeatures, shaderInt64));\n#endif\n")
	defRe := regexp.MustCompile(`(?m)^#define (VK_\w+) (.+)$`)
	for _, m := range defRe.FindAllStringSubmatch(src, -1) {
		name, val := m[1], strings.TrimSpace(m[2])
		switch {
		case name == "VK_NULL_HANDLE" || strings.HasPrefix(val, "(("):
			continue
		case strings.HasPrefix(val, `"`):
			fmt.Fprintf(&b, "printf(\"%s %%s\\n\", %s);\n", name, name)
		default:
			fmt.Fprintf(&b, "printf(\"%s %%lld\\n\", (long long)(%s));\n", name, name)
		}
	}
	return b.String()
}
