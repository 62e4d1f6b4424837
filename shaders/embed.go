// Package shaders holds chnet's GLSL compute shaders and their SPIR-V, compiled ahead of time by
// shaders/gen (go generate) and embedded, so building chnet needs no shader compiler. Each .comp
// opens by naming its CPU oracle in ops/cpu.
package shaders

//go:generate go run ./gen

import (
	"embed"
	"fmt"
)

//go:embed spv/*.spv
var spv embed.FS

// SPIRV returns a kernel's SPIR-V module.
func SPIRV(name string) ([]byte, error) {
	b, err := spv.ReadFile("spv/" + name + ".spv")
	if err != nil {
		return nil, fmt.Errorf("shaders: no kernel %q (regenerate with go generate ./shaders): %w", name, err)
	}
	return b, nil
}
