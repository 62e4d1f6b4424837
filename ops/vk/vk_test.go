package vk

import (
	"errors"
	"os"
	"sync"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops/cpu"
	"github.com/chnet/chnet/ops/optest"
)

var (
	shared     *Backend
	sharedErr  error
	sharedOnce sync.Once
)

// open returns the package's shared backend on the default device (lavapipe in CI), skipping the
// test when there is no Vulkan device unless CHNET_REQUIRE_VULKAN=1 makes that a failure.
func open(tb testing.TB) *Backend {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = Open(vkrt.Options{}) })
	if sharedErr != nil {
		skipOrFail(tb, sharedErr)
	}
	return shared
}

func skipOrFail(tb testing.TB, err error) {
	tb.Helper()
	if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && (errors.Is(err, vkrt.ErrUnavailable) || errors.Is(err, vkrt.ErrNoValidationLayer)) {
		tb.Skipf("NO VULKAN DEVICE — Vulkan tests check nothing here (set CHNET_REQUIRE_VULKAN=1 to fail instead): %v", err)
	}
	tb.Fatal(err)
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		if err := shared.Close(); err != nil && code == 0 {
			os.Stderr.WriteString("closing the Vulkan backend: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}

func TestCompareCPU(t *testing.T) { optest.CompareBackends(t, cpu.New(), open(t)) }

func TestGolden(t *testing.T) { optest.Golden(t, open(t)) }

func TestGradCheck(t *testing.T) { optest.GradCheck(t, open(t)) }

func TestCompareNetCPU(t *testing.T) { optest.CompareNet(t, cpu.New(), open(t)) }

func TestGoldenSGD(t *testing.T) { b := open(t); optest.GoldenSGD(t, b, optest.KernelSGD(b)) }

func TestConvActMatchesCPUComposition(t *testing.T) { optest.CompareConvAct(t, cpu.New(), open(t)) }
