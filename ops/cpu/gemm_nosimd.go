//go:build !(goexperiment.simd && amd64)

package cpu

// Without GOEXPERIMENT=simd (or off amd64) only the portable kernels exist.

func bestKernels() *kernelSet { return genericKernels }

func usableKernels() []*kernelSet { return []*kernelSet{genericKernels} }
