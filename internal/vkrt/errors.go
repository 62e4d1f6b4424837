package vkrt

import (
	"errors"
	"fmt"

	vk "github.com/vulkan-go/vulkan"
)

// Errors callers test with errors.Is.
var (
	// ErrUnavailable means there is no Vulkan here at all: no loader library, no driver, or no
	// device. Callers fall back to the CPU with one line saying why.
	ErrUnavailable = errors.New("vulkan is not available")
	// ErrDeviceLost means the device stopped (driver reset, hang, removed GPU); everything on it is
	// gone and the Device must be closed.
	ErrDeviceLost = errors.New("device lost")
	// ErrOutOfDeviceMemory means an allocation did not fit in device (or host-visible) memory.
	ErrOutOfDeviceMemory = errors.New("out of device memory")
	// ErrTimeout means submitted work did not finish within the device's timeout.
	ErrTimeout = errors.New("timed out waiting for the device")
	// ErrNoValidationLayer means validation was requested but VK_LAYER_KHRONOS_validation is not
	// installed.
	ErrNoValidationLayer = errors.New("VK_LAYER_KHRONOS_validation is not installed")
)

// ResultError is a failed Vulkan call: what was being done, and the VkResult.
type ResultError struct {
	Op     string
	Result vk.Result
}

func (e *ResultError) Error() string { return fmt.Sprintf("vkrt: %s: %s", e.Op, resultName(e.Result)) }

// Is maps device loss and memory exhaustion to the package's sentinel errors.
func (e *ResultError) Is(target error) bool {
	switch target {
	case ErrDeviceLost:
		return e.Result == vk.ErrorDeviceLost
	case ErrOutOfDeviceMemory:
		return e.Result == vk.ErrorOutOfDeviceMemory || e.Result == vk.ErrorOutOfHostMemory
	case ErrUnavailable:
		return e.Result == vk.ErrorIncompatibleDriver || e.Result == vk.ErrorInitializationFailed
	}
	return false
}

// check turns a VkResult into an error; non-negative results (success, incomplete) are nil.
func check(r vk.Result, op string, args ...any) error {
	if r >= 0 {
		return nil
	}
	if len(args) > 0 {
		op = fmt.Sprintf(op, args...)
	}
	return &ResultError{Op: op, Result: r}
}

func resultName(r vk.Result) string {
	names := map[vk.Result]string{
		vk.Success:                   "VK_SUCCESS",
		vk.NotReady:                  "VK_NOT_READY",
		vk.Timeout:                   "VK_TIMEOUT",
		vk.Incomplete:                "VK_INCOMPLETE",
		vk.ErrorOutOfHostMemory:      "VK_ERROR_OUT_OF_HOST_MEMORY",
		vk.ErrorOutOfDeviceMemory:    "VK_ERROR_OUT_OF_DEVICE_MEMORY",
		vk.ErrorInitializationFailed: "VK_ERROR_INITIALIZATION_FAILED",
		vk.ErrorDeviceLost:           "VK_ERROR_DEVICE_LOST",
		vk.ErrorMemoryMapFailed:      "VK_ERROR_MEMORY_MAP_FAILED",
		vk.ErrorLayerNotPresent:      "VK_ERROR_LAYER_NOT_PRESENT",
		vk.ErrorExtensionNotPresent:  "VK_ERROR_EXTENSION_NOT_PRESENT",
		vk.ErrorFeatureNotPresent:    "VK_ERROR_FEATURE_NOT_PRESENT",
		vk.ErrorIncompatibleDriver:   "VK_ERROR_INCOMPATIBLE_DRIVER",
		vk.ErrorTooManyObjects:       "VK_ERROR_TOO_MANY_OBJECTS",
		vk.ErrorFormatNotSupported:   "VK_ERROR_FORMAT_NOT_SUPPORTED",
		vk.ErrorFragmentedPool:       "VK_ERROR_FRAGMENTED_POOL",
		vk.ErrorOutOfPoolMemory:      "VK_ERROR_OUT_OF_POOL_MEMORY",
		vk.ErrorInvalidShaderNv:      "VK_ERROR_INVALID_SHADER_NV",
	}
	if n, ok := names[r]; ok {
		return n
	}
	return fmt.Sprintf("VkResult(%d)", int32(r))
}
