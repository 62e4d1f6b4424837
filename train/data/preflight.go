package data

import (
	"bufio"
	"context"
	"fmt"
	"image"
	"io"
	"runtime"

	"golang.org/x/sync/errgroup"

	"github.com/chnet/chnet/internal/regfile"
)

// Header reads what a file's header declares — format and size — checking it as DecodeImage
// would, without decoding pixels: the file must be a regular file of at most lim.MaxBytes, in a
// format chnet reads, declaring at most lim.MaxPixels pixels. Errors are *FileErrors.
func Header(path string, lim Limits) (image.Config, error) {
	lim = lim.withDefaults()
	f, size, err := regfile.Open(path)
	if err != nil {
		return image.Config{}, fileErr(path, err)
	}
	defer f.Close()
	if size > lim.MaxBytes {
		return image.Config{}, fileErr(path, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, size, lim.MaxBytes))
	}
	br := bufio.NewReader(io.LimitReader(f, lim.MaxBytes))
	head, _ := br.Peek(12)
	_, cfg, err := config(head, br, lim)
	if err != nil {
		return cfg, fileErr(path, err)
	}
	return cfg, nil
}

// CheckHeaders checks every pair of ds from the files' headers alone (Header), and that each mask
// declares its image's size, reading files on workers goroutines (0: GOMAXPROCS). It is quick —
// a few kilobytes per file — so every file of a run can be checked before any work starts. It
// returns the pairs that pass, in order, and one *FileError per pair that does not (the first
// bad file of the pair); the error is only for a cancelled ctx.
func CheckHeaders(ctx context.Context, ds *Dataset, lim Limits, workers int) (*Dataset, []error, error) {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(ds.Pairs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(workers)
	for i, p := range ds.Pairs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			errs[i] = checkPair(p, lim)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	good := &Dataset{Dir: ds.Dir}
	var bad []error
	for i, err := range errs {
		if err != nil {
			bad = append(bad, err)
			continue
		}
		good.Pairs = append(good.Pairs, ds.Pairs[i])
	}
	return good, bad, nil
}

func checkPair(p Pair, lim Limits) error {
	img, err := Header(p.Image, lim)
	if err != nil {
		return err
	}
	for _, m := range p.Masks {
		mc, err := Header(m, lim)
		if err != nil {
			return err
		}
		if mc.Width != img.Width || mc.Height != img.Height {
			return fileErr(m, fmt.Errorf("%w: mask %d×%d, image %s is %d×%d", ErrSizeMismatch, mc.Width, mc.Height, p.Image, img.Width, img.Height))
		}
	}
	return nil
}
