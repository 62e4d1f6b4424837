package data

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chnet/chnet/internal/golden"
)

// TestRealFolders lists every shared data set: all pairs found, nothing orphaned (PROVENANCE.md
// gives the counts).
func TestRealFolders(t *testing.T) {
	cases := []struct {
		dir   string
		pairs int
	}{
		{"data/polyp/train", 1450},
		{"data/polyp/test/Kvasir", 100},
		{"data/polyp/test/CVC-ClinicDB", 62},
		{"data/covid/train", 50},
		{"data/covid/test", 48},
	}
	for _, tc := range cases {
		t.Run(strings.ReplaceAll(tc.dir, "/", "_"), func(t *testing.T) {
			dir := golden.Path(t, tc.dir)
			ds, rep, err := List(dir, ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(ds.Pairs) != tc.pairs || rep.Skipped() != 0 {
				t.Fatalf("%d pairs (want %d); report %s", len(ds.Pairs), tc.pairs, rep)
			}
		})
	}
}

// TestRealPolypSlice loads 8 real training pairs (4 Kvasir JPEG, 4 ClinicDB PNG) through the
// training pipeline.
func TestRealPolypSlice(t *testing.T) {
	dir := golden.Path(t, "data/polyp/train")
	ds, _, err := List(dir, ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pick []string
	var kvasir, clinic int
	for _, p := range ds.Pairs {
		isKvasir := strings.HasPrefix(p.Name, "cju")
		if isKvasir && kvasir < 4 {
			kvasir++
			pick = append(pick, p.Name)
		} else if !isKvasir && clinic < 4 {
			clinic++
			pick = append(pick, p.Name)
		}
	}
	sub, err := ds.Subset(pick)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sub.Pairs {
		if ext := filepath.Ext(p.Image); (strings.HasPrefix(p.Name, "cju") && ext != ".jpg") || (!strings.HasPrefix(p.Name, "cju") && ext != ".png") {
			t.Fatalf("%s: unexpected image %s", p.Name, p.Image)
		}
	}
	cfg := TrainConfig(4, 1)
	cfg.Workers = 2
	l, err := NewLoader(sub, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep, err := l.Check(context.Background(), false); err != nil {
		t.Fatalf("%v (%s)", err, rep)
	}
	it, err := l.Epoch(context.Background(), l.Start())
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	for {
		b, err := it.Next()
		if err != nil {
			if err == io.EOF {
				break
			}
			t.Fatal(err)
		}
		s := b.Size
		for j := 0; j < b.N; j++ {
			img := b.Images[j*3*s*s : (j+1)*3*s*s]
			mask := b.Masks[j*s*s : (j+1)*s*s]
			var sum, fg float64
			for _, v := range img {
				sum += float64(v)
			}
			for _, v := range mask {
				if v < 0 || v > 1 {
					t.Fatalf("%s: mask value %v", b.Names[j], v)
				}
				fg += float64(v)
			}
			mean, frac := sum/float64(len(img)), fg/float64(len(mask))
			// Normalised endoscopy frames average near 0; every training frame shows a polyp.
			if mean < -2 || mean > 2 || frac < 0.001 || frac > 0.9 {
				t.Errorf("%s: image mean %.3f, polyp fraction %.4f", b.Names[j], mean, frac)
			}
		}
	}
	if l.CacheBytes() != 8*4*352*352 {
		t.Errorf("cache %d bytes", l.CacheBytes())
	}
}

// BenchmarkLoaderKvasir measures the loader on the 100 real Kvasir test frames with the
// official training pipeline (batch 16): "decode" includes JPEG decoding and the resize to
// 352 (first epoch), "cached" is a later epoch (augmentation and multi-scale resize only).
func BenchmarkLoaderKvasir(b *testing.B) {
	dir := golden.Path(b, "data/polyp/test/Kvasir")
	ds, _, err := List(dir, ListOptions{})
	if err != nil {
		b.Fatal(err)
	}
	epoch := func(b *testing.B, l *Loader, e int) {
		it, err := l.Epoch(context.Background(), l.StateAt(e, 0))
		if err != nil {
			b.Fatal(err)
		}
		defer it.Close()
		for {
			if _, err := it.Next(); err != nil {
				if err == io.EOF {
					return
				}
				b.Fatal(err)
			}
		}
	}
	b.Run("decode", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			l, err := NewLoader(ds, TrainConfig(16, 1))
			if err != nil {
				b.Fatal(err)
			}
			epoch(b, l, 0)
		}
		b.ReportMetric(float64(b.N*len(ds.Pairs))/time.Since(start).Seconds(), "img/s")
	})
	b.Run("cached", func(b *testing.B) {
		l, err := NewLoader(ds, TrainConfig(16, 1))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := l.Check(context.Background(), false); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		start := time.Now()
		for i := 0; i < b.N; i++ {
			epoch(b, l, i)
		}
		b.ReportMetric(float64(b.N*len(ds.Pairs))/time.Since(start).Seconds(), "img/s")
	})
}
