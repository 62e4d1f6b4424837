package experiment

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"

	"github.com/chnet/chnet/train/data"
)

// prepareData returns the training folder and test folders the runs use: the settings' own, or,
// where a limit is set, a seeded sample of each linked into out/data (made once, then reused).
func prepareData(out string, s Settings, dry bool) (string, []string, error) {
	trainDir, err := sample(s.Data, filepath.Join(out, "data", "train"), s.Limit, dry)
	if err != nil {
		return "", nil, err
	}
	tests := make([]string, len(s.Test))
	for i, t := range s.Test {
		// The sample keeps the folder's name: results are filed under it.
		if tests[i], err = sample(t, filepath.Join(out, "data", "test", filepath.Base(filepath.Clean(t))), s.TestLimit, dry); err != nil {
			return "", nil, err
		}
	}
	return trainDir, tests, nil
}

// sample links n image/mask pairs of src, drawn with a fixed seed, into dst; with n = 0, or n at
// least the folder's size, it returns src itself.
func sample(src, dst string, n int, dry bool) (string, error) {
	if n == 0 {
		return src, nil
	}
	ds, _, err := data.List(src, data.ListOptions{})
	if err != nil {
		return "", err
	}
	if n >= len(ds.Pairs) {
		return src, nil
	}
	if have, _, err := data.List(dst, data.ListOptions{}); err == nil {
		if len(have.Pairs) != n {
			return "", fmt.Errorf("%s holds %d pairs, not the %d asked for: it belongs to other settings", dst, len(have.Pairs), n)
		}
		return dst, nil
	}
	if dry {
		return dst, nil
	}
	rng := rand.New(rand.NewPCG(15, 0))
	pick := rng.Perm(len(ds.Pairs))[:n]
	slices.Sort(pick)
	tmp := dst + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	for _, i := range pick {
		p := ds.Pairs[i]
		if err := linkInto(p.Image, filepath.Join(tmp, "images")); err != nil {
			return "", err
		}
		for _, m := range p.Masks {
			if err := linkInto(m, filepath.Join(tmp, "masks")); err != nil {
				return "", err
			}
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", err
	}
	return dst, nil
}

// linkInto links file into dir under its own name, copying it where links are not possible.
func linkInto(file, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	dst := filepath.Join(dir, filepath.Base(file))
	if os.Symlink(abs, dst) == nil {
		return nil
	}
	in, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
