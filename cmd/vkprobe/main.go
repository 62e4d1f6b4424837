// Command vkprobe prints what chnet's Vulkan backend sees: every device's capabilities and,
// with -measure, the chosen device's per-dispatch recording cost and fp32 GEMM rate.
//
//	vkprobe                 # list devices and capabilities
//	vkprobe -measure        # also time dispatch recording and a few GEMM sizes
//	vkprobe -device llvmpipe -measure
//
// Exit status 2 means no Vulkan device was found.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/chnet/chnet/internal/vkrt"
	"github.com/chnet/chnet/ops"
	"github.com/chnet/chnet/ops/vk"
	"github.com/chnet/chnet/tensor"
)

func main() {
	device := flag.String("device", "", "device index or name substring (default: $CHNET_DEVICE or the best)")
	measure := flag.Bool("measure", false, "time dispatch recording and fp32 GEMM on the chosen device")
	gemm := flag.String("gemm", "1024,2048,4096", "GEMM sizes for -measure")
	flag.Parse()
	if err := run(*device, *measure, *gemm); err != nil {
		fmt.Fprintln(os.Stderr, "vkprobe:", err)
		if errors.Is(err, vkrt.ErrUnavailable) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

func run(device string, measure bool, gemm string) error {
	devs, err := vkrt.Devices()
	if err != nil {
		return err
	}
	for _, d := range devs {
		fmt.Print(d.Describe())
		fmt.Printf("  %-28s %s\n", "extensions", strings.Join(d.Extensions, " "))
	}
	if !measure {
		return nil
	}
	t0 := time.Now()
	b, err := vk.Open(vkrt.Options{Device: device, MaxDispatchesPerSubmit: 1 << 30})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Printf("\nopened %s in %v (push descriptors: %v)\n", b.Device().Info.Name, time.Since(t0).Round(time.Millisecond), b.Device().PushDescriptors())
	if err := dispatchCost(b); err != nil {
		return err
	}
	for _, f := range strings.Split(gemm, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("-gemm: bad size %q", f)
		}
		if err := gemmRate(b, n); err != nil {
			return err
		}
	}
	return nil
}

// dispatchCost records many tiny elementwise dispatches, independent (distinct outputs: no
// barrier needed) and then chained (each reads the previous one's output: a barrier each), and
// reports the host time per dispatch and the time including execution.
func dispatchCost(b *vk.Backend) error {
	const n, slots = 5000, 1024
	x, err := b.Alloc(tensor.Shape{1, 64})
	if err != nil {
		return err
	}
	out, err := b.Alloc(tensor.Shape{slots, 64})
	if err != nil {
		return err
	}
	defer b.Release(x.Storage())
	defer b.Release(out.Storage())
	views := make([]*tensor.Tensor, slots)
	for i := range views {
		views[i], _ = out.Narrow(0, i, 1)
	}
	if err := b.Fill(x, 1); err != nil {
		return err
	}
	if err := b.Sync(); err != nil {
		return err
	}
	for _, chained := range []bool{false, true} {
		st := b.Device().Stats()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			src := x
			if chained && i > 0 {
				src = views[(i-1)%slots]
			}
			if err := b.Unary(ops.ReLU, views[i%slots], src); err != nil {
				return err
			}
		}
		rec := time.Since(t0)
		if err := b.Sync(); err != nil {
			return err
		}
		all := time.Since(t0)
		bar := b.Device().Stats().Barriers - st.Barriers
		fmt.Printf("dispatch (chained %v): record %.2f µs, record+execute %.2f µs per dispatch, %d barriers for %d dispatches\n",
			chained, float64(rec.Nanoseconds())/1e3/n, float64(all.Nanoseconds())/1e3/n, bar, n)
	}
	return nil
}

// gemmRate times an n×n×n fp32 product (a 1x1 convolution) and prints TFLOP/s.
func gemmRate(b *vk.Backend, n int) error {
	a, err := b.Alloc(tensor.Shape{1, n, n, 1})
	if err != nil {
		return err
	}
	w, err := b.Alloc(tensor.Shape{n, n, 1, 1})
	if err != nil {
		return err
	}
	c, err := b.Alloc(tensor.Shape{1, n, n, 1})
	if err != nil {
		return err
	}
	defer func() {
		b.Release(a.Storage())
		b.Release(w.Storage())
		b.Release(c.Storage())
	}()
	b.Fill(a, 0.5)
	b.Fill(w, 0.25)
	p := ops.Conv2DParams{}.Norm()
	if err := b.Conv2D(c, a, w, nil, p); err != nil {
		return err
	}
	if err := b.Sync(); err != nil {
		return err
	}
	reps := 1
	for {
		t0 := time.Now()
		for i := 0; i < reps; i++ {
			if err := b.Conv2D(c, a, w, nil, p); err != nil {
				return err
			}
		}
		if err := b.Sync(); err != nil {
			return err
		}
		el := time.Since(t0)
		if el > 300*time.Millisecond || reps >= 1<<12 {
			flops := 2 * float64(n) * float64(n) * float64(n) * float64(reps)
			fmt.Printf("gemm %d: %.3f ms, %.2f TFLOP/s\n", n, float64(el.Microseconds())/1e3/float64(reps), flops/el.Seconds()/1e12)
			return nil
		}
		reps *= 4
	}
}
