package data

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"math"
	"os"
	"path/filepath"

	"github.com/chnet/chnet/internal/atomicfile"

	"github.com/chnet/chnet/tensor"
)

// synthSeedMix separates the generator's streams from the loader's and the splits' for a seed.
const synthSeedMix = 0x73796e746865746963 & (1<<64 - 1) // "synthetic"

// Synthesize draws sample index of the built-in synthetic polyp set, w×h pixels: a pink-red
// mucosa with uneven endoscope lighting, fine texture, dark folds, thin vessels and specular
// highlights, and one or two shaded, irregular polyp blobs whose union is the mask. The same
// (seed, index, w, h) always gives the same bytes.
//
// It is built to need shape, not just colour: polyps take the mucosa's hue shifted by a small
// random amount, so lighting and folds make many background pixels look like polyp pixels;
// what separates them is the dome shading, the shadowed rim and the smooth closed outline.
func Synthesize(seed uint64, index, w, h int) (*RGB, *Mask, error) {
	if w < 8 || h < 8 {
		return nil, nil, fmt.Errorf("data: synthetic images need at least 8×8 pixels, got %d×%d", w, h)
	}
	if int64(w)*int64(h) > DefaultMaxPixels {
		return nil, nil, fmt.Errorf("data: synthetic image %d×%d is over the pixel limit", w, h)
	}
	r := tensor.NewRNG(seed^synthSeedMix, uint64(index))
	s := float64(min(w, h))
	n := w * h

	// Mucosa colour and a per-pixel brightness field: lighting × vignette × texture.
	bg := [3]float64{r.Uniform(185, 230), r.Uniform(75, 115), r.Uniform(65, 105)}
	light := make([]float64, n)
	type wave struct{ fx, fy, ph, a float64 }
	waves := func(k int, cycLo, cycHi, amp float64) []wave {
		ws := make([]wave, k)
		for i := range ws {
			th := r.Uniform(0, 2*math.Pi)
			f := r.Uniform(cycLo, cycHi) * 2 * math.Pi / s
			ws[i] = wave{f * math.Cos(th), f * math.Sin(th), r.Uniform(0, 2*math.Pi), amp * r.Uniform(0.5, 1)}
		}
		return ws
	}
	low := waves(4, 0.5, 2, 0.12)
	tex := waves(8, 10, 30, 0.03)
	vx, vy := r.Uniform(0.3, 0.7)*float64(w), r.Uniform(0.3, 0.7)*float64(h)
	vr := math.Hypot(float64(w), float64(h)) * 0.6
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			fx, fy := float64(x), float64(y)
			v := 1.0
			for _, wv := range low {
				v += wv.a * math.Sin(wv.fx*fx+wv.fy*fy+wv.ph)
			}
			for _, wv := range tex {
				v += wv.a * math.Sin(wv.fx*fx+wv.fy*fy+wv.ph)
			}
			d := math.Hypot(fx-vx, fy-vy) / vr
			light[y*w+x] = v * (1 - 0.55*d*d)
		}
	}

	// Folds and vessels are stamped along smooth random paths: darkening (folds wide, vessels
	// thin and redder).
	fold := make([]float64, n)
	vessel := make([]float64, n)
	stampPath := func(dst []float64, width, strength float64, steps int, turn float64) {
		x, y := r.Uniform(0, float64(w)), r.Uniform(0, float64(h))
		th := r.Uniform(0, 2*math.Pi)
		rad := int(math.Ceil(2 * width))
		for i := 0; i < steps; i++ {
			th += r.Uniform(-turn, turn)
			x += math.Cos(th) * width * 0.5
			y += math.Sin(th) * width * 0.5
			cx, cy := int(x), int(y)
			for yy := max(cy-rad, 0); yy <= min(cy+rad, h-1); yy++ {
				for xx := max(cx-rad, 0); xx <= min(cx+rad, w-1); xx++ {
					d := math.Hypot(float64(xx)-x, float64(yy)-y) / width
					dst[yy*w+xx] = max(dst[yy*w+xx], strength*math.Exp(-d*d))
				}
			}
		}
	}
	for k := 1 + r.Intn(3); k > 0; k-- {
		wd := s * r.Uniform(0.015, 0.035)
		stampPath(fold, wd, r.Uniform(0.25, 0.45), int(1.5*s/wd), 0.08)
	}
	for k := 3 + r.Intn(5); k > 0; k-- {
		wd := max(s*r.Uniform(0.003, 0.007), 0.7)
		stampPath(vessel, wd, r.Uniform(0.2, 0.45), int(0.8*s/wd), 0.3)
	}

	// Polyps: star-shaped outlines r(θ) = r0·(1 + Σ a_k cos(kθ + φ_k)) on a rotated ellipse.
	type polyp struct {
		cx, cy, r0, ax, ay, rot float64
		harm                    [4][2]float64
		tint                    [3]float64
	}
	var polyps []polyp
	count := 1
	if r.Float64() < 0.35 {
		count = 2
	}
	for i := 0; i < count; i++ {
		p := polyp{r0: s * r.Uniform(0.1, 0.28), ax: 1, ay: r.Uniform(0.6, 1), rot: r.Uniform(0, math.Pi)}
		p.cx = r.Uniform(0.2, 0.8) * float64(w)
		p.cy = r.Uniform(0.2, 0.8) * float64(h)
		for k := range p.harm {
			p.harm[k] = [2]float64{r.Uniform(0, 0.09), r.Uniform(0, 2*math.Pi)}
		}
		for c := range p.tint {
			p.tint[c] = r.Uniform(-0.04, 0.2)
		}
		polyps = append(polyps, p)
	}
	// Light from the upper left-ish, as endoscope tips usually sit; the same for all polyps.
	la := r.Uniform(-0.9, -0.3) * math.Pi
	lx, ly, lz := 0.6*math.Cos(la), 0.6*math.Sin(la), 0.8

	img := &RGB{W: w, H: h, Pix: make([]uint8, 3*n)}
	mask := &Mask{W: w, H: h, Pix: make([]uint8, n)}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			i := y*w + x
			col := bg
			shade := light[i] * (1 - fold[i])
			for c := range col {
				col[c] *= shade
			}
			col[1] *= 1 - vessel[i]
			col[2] *= 1 - 0.8*vessel[i]
			col[0] *= 1 - 0.5*vessel[i]
			for _, p := range polyps {
				dx, dy := float64(x)-p.cx, float64(y)-p.cy
				u := (dx*math.Cos(p.rot) + dy*math.Sin(p.rot)) / p.ax
				v := (-dx*math.Sin(p.rot) + dy*math.Cos(p.rot)) / p.ay
				rho := math.Hypot(u, v)
				th := math.Atan2(v, u)
				edge := 1.0
				for k, hm := range p.harm {
					edge += hm[0] * math.Cos(float64(k+2)*th+hm[1])
				}
				t := rho / (p.r0 * edge)
				switch {
				case t < 1:
					mask.Pix[i] = 1
					// Dome shading from the height field z = √(1 − t²).
					z := math.Sqrt(1 - t*t)
					nx, ny := dx/(p.r0*edge)*0.9, dy/(p.r0*edge)*0.9
					dot := (nx*lx + ny*ly + z*lz) / math.Sqrt(nx*nx+ny*ny+z*z)
					ps := light[i] * (0.55 + 0.55*dot)
					for c := range col {
						col[c] = bg[c] * (1 + p.tint[c]) * ps
					}
					// Fine surface pits.
					col[1] *= 1 - 0.3*vessel[i]
				case t < 1.18:
					// Shadowed rim just outside the outline.
					k := 1 - 0.3*(1-(t-1)/0.18)
					for c := range col {
						col[c] *= k
					}
				}
			}
			for c := range col {
				img.Pix[3*i+c] = toByte(float32(col[c]))
			}
		}
	}

	// Specular highlights: a few on the polyps on the lit side, a few on the mucosa.
	spot := func(x, y, rad float64) {
		ri := int(math.Ceil(2.5 * rad))
		for yy := max(int(y)-ri, 0); yy <= min(int(y)+ri, h-1); yy++ {
			for xx := max(int(x)-ri, 0); xx <= min(int(x)+ri, w-1); xx++ {
				d := math.Hypot(float64(xx)-x, float64(yy)-y) / rad
				a := 0.95 * math.Exp(-d*d*d*d)
				i := yy*w + xx
				for c, white := range [3]float64{255, 250, 245} {
					v := float64(img.Pix[3*i+c])
					img.Pix[3*i+c] = toByte(float32(v + a*(white-v)))
				}
			}
		}
	}
	for _, p := range polyps {
		for k := 1 + r.Intn(3); k > 0; k-- {
			off := p.r0 * r.Uniform(0.2, 0.55)
			spot(p.cx+off*lx/0.6+r.Uniform(-0.1, 0.1)*p.r0, p.cy+off*ly/0.6+r.Uniform(-0.1, 0.1)*p.r0, s*r.Uniform(0.006, 0.02))
		}
	}
	for k := 2 + r.Intn(5); k > 0; k-- {
		spot(r.Uniform(0, float64(w)), r.Uniform(0, float64(h)), s*r.Uniform(0.004, 0.015))
	}

	// Sensor noise, σ = 3 levels.
	for i := range img.Pix {
		img.Pix[i] = toByte(float32(float64(img.Pix[i]) + 3*r.Normal()))
	}
	return img, mask, nil
}

// WriteSynthetic writes n synthetic samples to dir/images and dir/masks as PNG
// (synth_0000.png, ...; masks 0/255), each file atomically, so List(dir) reads them back.
func WriteSynthetic(dir string, n, w, h int, seed uint64) error {
	for _, sub := range []string{"images", "masks"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return fmt.Errorf("data: %w", err)
		}
	}
	for i := 0; i < n; i++ {
		img, m, err := Synthesize(seed, i, w, h)
		if err != nil {
			return err
		}
		name := fmt.Sprintf("synth_%04d.png", i)
		rgba := image.NewNRGBA(image.Rect(0, 0, w, h))
		for p := 0; p < w*h; p++ {
			copy(rgba.Pix[4*p:4*p+3], img.Pix[3*p:3*p+3])
			rgba.Pix[4*p+3] = 255
		}
		if err := writePNG(filepath.Join(dir, "images", name), rgba); err != nil {
			return err
		}
		g := image.NewGray(image.Rect(0, 0, w, h))
		for p, v := range m.Pix {
			g.Pix[p] = 255 * v
		}
		if err := writePNG(filepath.Join(dir, "masks", name), g); err != nil {
			return err
		}
	}
	return nil
}

func writePNG(path string, img image.Image) error {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return fmt.Errorf("data: write %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}
