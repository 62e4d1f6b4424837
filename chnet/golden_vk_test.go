package chnet

import (
	"errors"
	"os"
	"testing"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops/vk"
)

// The released model's golden parity on the Vulkan backend (lavapipe in CI).
func TestGoldenModelVulkan(t *testing.T) {
	b, err := vk.Open(vkrt.Options{})
	if err != nil {
		if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, vkrt.ErrUnavailable) {
			t.Skipf("NO VULKAN DEVICE — this test checks nothing here (CHNET_REQUIRE_VULKAN=1 makes it fail): %v", err)
		}
		t.Fatal(err)
	}
	defer b.Close()
	GoldenModel(t, b)
}

// Folded inference on the Vulkan backend (lavapipe in CI): the conv2d_act kernels.
func TestFoldedInferenceVulkan(t *testing.T) {
	b, err := vk.Open(vkrt.Options{})
	if err != nil {
		if os.Getenv("CHNET_REQUIRE_VULKAN") != "1" && errors.Is(err, vkrt.ErrUnavailable) {
			t.Skipf("NO VULKAN DEVICE — this test checks nothing here (CHNET_REQUIRE_VULKAN=1 makes it fail): %v", err)
		}
		t.Fatal(err)
	}
	defer b.Close()
	FoldedInference(t, b)
}
