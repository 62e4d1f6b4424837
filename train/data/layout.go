package data

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/chnet/chnet/internal/regfile"
)

// Layouts chnet reads as a data set folder (issue 11, point 11):
//   - images/ and masks/, paired by base name (Kvasir, ClinicDB, BUSI's <name>_mask);
//   - image/ and mask/, PraNet's and Polyp-PVT's singular names;
//   - nnU-Net's raw 2-D layout: imagesTr/<CASE>_0000.<ext> (one RGB or grey file per case) and
//     labelsTr/<CASE>.<ext>, label maps with background 0 and the foreground 1, as dataset.json
//     declares; imagesTs/ and labelsTs/ where there are no training folders.
//
// Layout names a folder's layout, as List found it.
type Layout struct {
	Name           string // "images/masks", "image/mask", "nnU-Net"
	Images, Masks  string // the two folders
	NNUNet         bool   // image names carry the channel suffix _0000; masks are label maps
	FileEnding     string // nnU-Net's dataset.json file_ending, if given
	ForegroundName string // nnU-Net's foreground label name, if given
}

// LayoutNames says which layouts List reads, for messages.
const LayoutNames = "images/ and masks/, image/ and mask/ (PraNet), or nnU-Net's imagesTr/ and labelsTr/ with dataset.json"

// DetectLayout finds dir's layout.
func DetectLayout(dir string) (*Layout, error) {
	isDir := func(name string) bool {
		st, err := os.Stat(filepath.Join(dir, name))
		return err == nil && st.IsDir()
	}
	for _, l := range []Layout{{Name: "images/masks", Images: "images", Masks: "masks"}, {Name: "image/mask", Images: "image", Masks: "mask"}} {
		if isDir(l.Images) {
			l.Images, l.Masks = filepath.Join(dir, l.Images), filepath.Join(dir, l.Masks)
			return &l, nil
		}
	}
	for _, split := range []string{"Tr", "Ts"} {
		if isDir("images"+split) && isDir("labels"+split) {
			l := &Layout{Name: "nnU-Net", Images: filepath.Join(dir, "images"+split), Masks: filepath.Join(dir, "labels"+split), NNUNet: true}
			return l, readNNUNetJSON(filepath.Join(dir, "dataset.json"), l)
		}
	}
	return nil, fmt.Errorf("data: %s: no data set layout found (want %s)", dir, LayoutNames)
}

// readNNUNetJSON reads what chnet needs of dataset.json: one foreground label, valued 1, and the
// file ending. A missing dataset.json is allowed (labels are then taken as 0 and 1).
func readNNUNetJSON(path string, l *Layout) error {
	b, err := regfile.ReadFile(path, 1<<20)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data: %w", err)
	}
	var js struct {
		Labels     map[string]json.RawMessage `json:"labels"`
		FileEnding string                     `json:"file_ending"`
	}
	if err := json.Unmarshal(b, &js); err != nil {
		return fileErr(path, err)
	}
	l.FileEnding = js.FileEnding
	var fg []string
	for name, v := range js.Labels {
		var n int
		if json.Unmarshal(v, &n) != nil {
			return fileErr(path, fmt.Errorf("label %q: %s is not one integer (region-based labels are not supported)", name, v))
		}
		switch {
		case n == 0:
		case n == 1:
			l.ForegroundName = name
			fg = append(fg, name)
		default:
			fg = append(fg, name)
		}
	}
	if len(fg) > 1 {
		sort.Strings(fg)
		return fileErr(path, fmt.Errorf("labels %s: chnet segments one foreground class (label 1)", strings.Join(fg, ", ")))
	}
	return nil
}

// caseName is an nnU-Net image file's case: "polyp_012_0000.png" → "polyp_012". ok is false for
// other channels (_0001…) and names without a channel suffix.
func caseName(stem string) (name string, channel string, ok bool) {
	i := strings.LastIndex(stem, "_")
	if i <= 0 || len(stem)-i-1 != 4 {
		return "", "", false
	}
	for _, c := range stem[i+1:] {
		if c < '0' || c > '9' {
			return "", "", false
		}
	}
	return stem[:i], stem[i+1:], true
}
