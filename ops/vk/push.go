package vk

import (
	"unsafe"

	"github.com/chnet/chnet/internal/vkrt"
)

// Compile-time checks that every push block fits the 128 bytes each pipeline layout declares
// (the portable minimum of maxPushConstantsSize): an array of negative length does not compile.
// TestPushBlocksFit also checks they are multiples of four bytes.
var (
	_ [vkrt.MaxPush - unsafe.Sizeof(ewPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(sumChunksPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(sumRowsPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(poolPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(resizePush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(bnStatsPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(bnApplyPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(bngSumsPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(bngApplyPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(slBoxPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(slTermsPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(slFinalPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(slGradPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(sgdPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(convPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(matmulPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(rowsPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(lnPush{})]byte
	_ [vkrt.MaxPush - unsafe.Sizeof(permutePush{})]byte
)
