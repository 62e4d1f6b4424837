package data

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// imageExts are the extensions listed as images or masks (lower-cased). BMP and TIFF are listed
// so they are never silently dropped; decoding them fails with ErrUnsupported, naming the file.
var imageExts = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true,
	".bmp": true, ".tif": true, ".tiff": true,
}

// IsImageName reports whether a file name has an image extension and is not hidden. Dotfiles,
// including macOS "._name" resource forks, break naive loaders (MIC-DKFZ/nnUNet#1601).
func IsImageName(name string) bool {
	if strings.HasPrefix(name, ".") {
		return false
	}
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// Pair is one training sample: an image and its mask file(s).
type Pair struct {
	Name  string   // base name shared by image and mask, e.g. "cju0qoxqj9q6s0835b43399p4"
	Image string   // path of the image
	Masks []string // mask paths; several (BUSI "<name>_mask.png", "<name>_mask_1.png") are unioned
	// LabelMap marks label-map masks (nnU-Net's: background 0, foreground 1) rather than 0/255
	// images: their foreground is every non-zero value.
	LabelMap bool
}

// Dataset is a folder's pairs, sorted by name so listing order never depends on the filesystem.
type Dataset struct {
	Dir   string
	Pairs []Pair
}

// ListOptions controls what List does with problems.
type ListOptions struct {
	// SkipBad leaves orphans and ambiguous names out (they are counted in the Report) instead of
	// failing with a *PairingError.
	SkipBad bool
}

// Report says what a listing or check saw. Nothing is dropped without appearing here.
type Report struct {
	Pairs        int      // usable pairs
	OrphanImages []string // images without a mask (skipped only with SkipBad)
	OrphanMasks  []string // masks without an image (skipped only with SkipBad)
	Duplicates   []string // ambiguous base names (skipped only with SkipBad)
	Ignored      []string // non-image files and hidden files, never samples
	Bad          []error  // pairs that failed to decode (Check), each a *FileError
}

// Skipped is the number of samples left out.
func (r *Report) Skipped() int {
	return len(r.OrphanImages) + len(r.OrphanMasks) + len(r.Duplicates) + len(r.Bad)
}

func (r *Report) String() string {
	return fmt.Sprintf("%d pairs; skipped: %d images without mask, %d masks without image, %d ambiguous names, %d undecodable; %d non-image files ignored",
		r.Pairs, len(r.OrphanImages), len(r.OrphanMasks), len(r.Duplicates), len(r.Bad), len(r.Ignored))
}

// listFolder returns image files by base name (several if the name is ambiguous) and the
// ignored entries. Sub-folders are ignored: a dataset folder is flat.
func listFolder(dir string) (map[string][]string, []string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, err
	}
	byName := map[string][]string{}
	var ignored []string
	for _, e := range ents {
		name := e.Name()
		p := filepath.Join(dir, name)
		if e.IsDir() {
			continue
		}
		if !IsImageName(name) {
			ignored = append(ignored, p)
			continue
		}
		stem := strings.TrimSuffix(name, filepath.Ext(name))
		byName[stem] = append(byName[stem], p)
	}
	return byName, ignored, nil
}

// busiStem strips a BUSI mask suffix: "x_mask" and "x_mask_3" → "x". ok is false otherwise.
func busiStem(stem string) (string, bool) {
	i := strings.LastIndex(stem, "_mask")
	if i <= 0 {
		return "", false
	}
	rest := stem[i+len("_mask"):]
	if rest == "" {
		return stem[:i], true
	}
	if rest[0] != '_' || len(rest) == 1 {
		return "", false
	}
	for _, c := range rest[1:] {
		if c < '0' || c > '9' {
			return "", false
		}
	}
	return stem[:i], true
}

// List pairs dir/images with dir/masks by base name; extensions may differ (Kvasir ships .jpg
// masks, ClinicDB .png). A mask named exactly like an image pairs with it; otherwise BUSI-style
// "<name>_mask" and "<name>_mask_<n>" masks all pair with image <name> and are unioned.
// Every orphan and ambiguous name is listed in one *PairingError unless opt.SkipBad.
//
// The folder may be in any layout of DetectLayout; nnU-Net's images pair by case (the name
// without its _0000 channel suffix).
func List(dir string, opt ListOptions) (*Dataset, *Report, error) {
	lay, err := DetectLayout(dir)
	if err != nil {
		return nil, nil, err
	}
	imgs, ignI, err := listFolder(lay.Images)
	if err != nil {
		return nil, nil, fmt.Errorf("data: list %s: %w (want %s)", dir, err, LayoutNames)
	}
	masks, ignM, err := listFolder(lay.Masks)
	if err != nil {
		return nil, nil, fmt.Errorf("data: list %s: %w (want %s)", dir, err, LayoutNames)
	}
	if lay.NNUNet {
		if imgs, err = byCase(lay, imgs); err != nil {
			return nil, nil, err
		}
	}
	rep := &Report{Ignored: append(ignI, ignM...)}
	dup := func(name string, files []string) {
		rep.Duplicates = append(rep.Duplicates, name+": "+strings.Join(files, ", "))
	}
	maskFor := map[string][]string{}
	var maskStems []string
	for stem := range masks {
		maskStems = append(maskStems, stem)
	}
	sort.Strings(maskStems)
	for _, stem := range maskStems {
		files := masks[stem]
		if len(files) > 1 {
			sort.Strings(files)
			dup(stem, files)
			continue
		}
		target := stem
		if _, ok := imgs[stem]; !ok {
			if s, ok := busiStem(stem); ok {
				if _, ok := imgs[s]; ok {
					target = s
				}
			}
		}
		if _, ok := imgs[target]; !ok {
			rep.OrphanMasks = append(rep.OrphanMasks, files[0])
			continue
		}
		maskFor[target] = append(maskFor[target], files[0])
	}
	ds := &Dataset{Dir: dir}
	for stem, files := range imgs {
		if len(files) > 1 {
			sort.Strings(files)
			dup(stem, files)
			continue
		}
		ms, ok := maskFor[stem]
		if !ok {
			rep.OrphanImages = append(rep.OrphanImages, files[0])
			continue
		}
		sort.Strings(ms)
		ds.Pairs = append(ds.Pairs, Pair{Name: stem, Image: files[0], Masks: ms, LabelMap: lay.NNUNet})
	}
	sort.Slice(ds.Pairs, func(i, j int) bool { return ds.Pairs[i].Name < ds.Pairs[j].Name })
	for _, l := range [][]string{rep.OrphanImages, rep.OrphanMasks, rep.Duplicates, rep.Ignored} {
		sort.Strings(l)
	}
	rep.Pairs = len(ds.Pairs)
	if !opt.SkipBad && len(rep.OrphanImages)+len(rep.OrphanMasks)+len(rep.Duplicates) > 0 {
		return nil, rep, &PairingError{Dir: dir, OrphanImages: rep.OrphanImages, OrphanMasks: rep.OrphanMasks, Duplicates: rep.Duplicates}
	}
	if len(ds.Pairs) == 0 {
		return nil, rep, fmt.Errorf("data: %s: no image/mask pairs found", dir)
	}
	return ds, rep, nil
}

// byCase re-keys nnU-Net image files by case. Channel files past _0000 are refused: chnet reads
// one file per case (RGB or grey), and dropping channels would train on less than the data.
func byCase(lay *Layout, imgs map[string][]string) (map[string][]string, error) {
	out := map[string][]string{}
	var extra []string
	for stem, files := range imgs {
		name, ch, ok := caseName(stem)
		switch {
		case !ok:
			out[stem] = append(out[stem], files...) // no channel suffix: listed as an orphan
		case ch != "0000":
			extra = append(extra, files...)
		default:
			out[name] = append(out[name], files...)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return nil, fmt.Errorf("data: %s: %d images are channels past _0000 (e.g. %s): chnet reads one RGB or grey file per case", lay.Images, len(extra), extra[0])
	}
	return out, nil
}

// Names returns the pairs' base names, sorted.
func (d *Dataset) Names() []string {
	out := make([]string, len(d.Pairs))
	for i, p := range d.Pairs {
		out[i] = p.Name
	}
	return out
}

// Subset returns the pairs with the given names, in the order given (a split's order). Unknown
// names are an error: a splits.json from another dataset must not silently train on less.
func (d *Dataset) Subset(names []string) (*Dataset, error) {
	idx := make(map[string]int, len(d.Pairs))
	for i, p := range d.Pairs {
		idx[p.Name] = i
	}
	out := &Dataset{Dir: d.Dir, Pairs: make([]Pair, 0, len(names))}
	var missing []string
	for _, n := range names {
		i, ok := idx[n]
		if !ok {
			missing = append(missing, n)
			continue
		}
		out.Pairs = append(out.Pairs, d.Pairs[i])
	}
	if len(missing) > 0 {
		if len(missing) > 10 {
			missing = append(missing[:10], fmt.Sprintf("... (%d more)", len(missing)-10))
		}
		return nil, fmt.Errorf("data: %s: %d names not in the dataset: %s", d.Dir, len(missing), strings.Join(missing, ", "))
	}
	return out, nil
}

// ListImages lists the images to predict on: path may be one image file or a flat folder
// (sorted; hidden and non-image files are returned as ignored, not as errors).
func ListImages(path string) (images, ignored []string, err error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	if !st.IsDir() {
		return []string{path}, nil, nil
	}
	ents, err := os.ReadDir(path)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	for _, e := range ents {
		p := filepath.Join(path, e.Name())
		switch {
		case e.IsDir():
		case IsImageName(e.Name()):
			images = append(images, p)
		default:
			ignored = append(ignored, p)
		}
	}
	slices.Sort(images)
	if len(images) == 0 {
		return nil, ignored, fmt.Errorf("data: %s: no image files (.png .jpg .jpeg .gif)", path)
	}
	return images, ignored, nil
}

// LoadPair decodes a pair: the image as RGB, its masks binarised and unioned. Each mask must
// have the image's size: resizing a mismatched mask would silently misalign the labels.
func LoadPair(p Pair, lim Limits) (*RGB, *Mask, error) {
	img, err := DecodeImage(p.Image, lim)
	if err != nil {
		return nil, nil, err
	}
	var out *Mask
	for _, mp := range p.Masks {
		decode := DecodeMask
		if p.LabelMap {
			decode = DecodeLabelMap
		}
		m, err := decode(mp, lim)
		if err != nil {
			return nil, nil, err
		}
		if m.W != img.W || m.H != img.H {
			return nil, nil, fileErr(mp, fmt.Errorf("%w: mask %d×%d, image %s is %d×%d", ErrSizeMismatch, m.W, m.H, p.Image, img.W, img.H))
		}
		if out == nil {
			out = m
			continue
		}
		for i, v := range m.Pix {
			out.Pix[i] |= v
		}
	}
	if out == nil {
		return nil, nil, fileErr(p.Image, errors.New("no mask"))
	}
	return img, out, nil
}
