package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/chnet/chnet/internal/atomicfile"
)

// The paper's recipe (Section 5.3; reference.md §1.2): 352×352, batch 16, every training image,
// the final epoch tested, an ImageNet backbone; epochs per task.
const (
	PaperSize  = 352
	PaperBatch = 16
)

// PaperEpochs are the epochs of Section 5.3 per task.
var PaperEpochs = map[string]int{"polyp": 50, "breast": 100, "lung": 200}

// Settings are an experiment's scale and data. The zero values of Limit, TestLimit and
// ValFraction, with the defaults of Defaults, are the paper's recipe; anything else is a
// reduction, listed in every summary by Reductions.
type Settings struct {
	Data       string   `json:"data"` // training folder (images/, masks/)
	Test       []string `json:"test"` // test folders, scored after training
	Task       string   `json:"task"` // metric set: lung or polyp
	Convention string   `json:"convention"`
	Size       int      `json:"size"`
	Epochs     int      `json:"epochs"`
	// FrozenEpochs are the epochs of a decoder trained on a frozen backbone (0: Epochs).
	FrozenEpochs int `json:"frozen_epochs,omitempty"`
	BatchSize    int `json:"batch_size"`
	Limit        int `json:"limit,omitempty"`      // training images used (0: all)
	TestLimit    int `json:"test_limit,omitempty"` // images per test folder (0: all)
	// ValFraction holds out a share of the training images for per-epoch validation; the paper
	// trains on all of them and tests the final epoch.
	ValFraction     float64 `json:"val_fraction"`
	BackboneWeights string  `json:"backbone_weights,omitempty"` // ImageNet Res2Net-50 file
	// Not part of a run's identity: more seeds can be added to a folder later, and the
	// architectures and head widths only choose which runs an experiment has.
	Seeds      int      `json:"seeds"`
	Archs      []string `json:"archs,omitempty"`
	HeadWidths []int    `json:"head_widths,omitempty"`
	Workers    int      `json:"workers,omitempty"`
}

// Defaults returns the paper's recipe for a task, with every architecture of its tables.
func Defaults(task string) Settings {
	s := Settings{Task: task, Convention: "matlab", Size: PaperSize, Epochs: PaperEpochs[task], BatchSize: PaperBatch,
		Seeds: 1, HeadWidths: []int{32, 128}}
	switch task {
	case "lung":
		s.Archs = []string{"chnet", "unet", "attunet", "utnet", "transunet", "fcn"}
	case "polyp":
		s.Archs = []string{"chnet", "unet", "attunet", "utnet", "transunet"}
	}
	return s
}

// Validate checks the values a run cannot start with, naming the setting.
func (s *Settings) Validate() error {
	switch {
	case s.Data == "":
		return fmt.Errorf("no training folder")
	case len(s.Test) == 0:
		return fmt.Errorf("no test folder")
	case s.Size*224/PaperSize < 32:
		// The per-batch sizes are the paper's 224..352 scaled to Size; the network needs 32.
		return fmt.Errorf("size must be at least 51, so that the smallest per-batch size (224/352 of it) is at least 32; got %d", s.Size)
	case s.Epochs < 1:
		return fmt.Errorf("epochs must be at least 1, got %d", s.Epochs)
	case s.FrozenEpochs < 0:
		return fmt.Errorf("frozen-backbone epochs must not be negative, got %d", s.FrozenEpochs)
	case s.BatchSize < 1:
		return fmt.Errorf("batch size must be at least 1, got %d", s.BatchSize)
	case s.Limit < 0 || s.TestLimit < 0:
		return fmt.Errorf("image limits must not be negative")
	case s.Seeds < 1:
		return fmt.Errorf("seeds must be at least 1, got %d", s.Seeds)
	case s.ValFraction < 0 || s.ValFraction >= 1:
		return fmt.Errorf("validation fraction must be in [0, 1), got %v", s.ValFraction)
	}
	seen := map[string]string{}
	for _, t := range s.Test {
		b := filepath.Base(filepath.Clean(t))
		if prev, ok := seen[b]; ok {
			return fmt.Errorf("test folders %s and %s have the same name %q: their results would share a folder", prev, t, b)
		}
		seen[b] = t
	}
	return nil
}

// TestNames are the test folders' base names, which name their results in a run folder.
func (s *Settings) TestNames() []string {
	n := make([]string, len(s.Test))
	for i, t := range s.Test {
		n[i] = filepath.Base(filepath.Clean(t))
	}
	return n
}

// Reductions lists, in words, how these settings depart from the paper's recipe.
func (s *Settings) Reductions() []string {
	var r []string
	if s.Size != PaperSize {
		r = append(r, fmt.Sprintf("images at %d×%d (paper: %d×%d), per-batch training sizes scaled alike", s.Size, s.Size, PaperSize, PaperSize))
	}
	if e := PaperEpochs[s.Task]; s.Epochs != e {
		r = append(r, fmt.Sprintf("%d epochs (paper: %d for %s)", s.Epochs, e, s.Task))
	}
	if s.FrozenEpochs > 0 && s.FrozenEpochs != s.Epochs {
		r = append(r, fmt.Sprintf("decoders on frozen backbones trained %d epochs (the paper does not say; the end-to-end runs' %d otherwise)", s.FrozenEpochs, s.Epochs))
	}
	if s.BatchSize != PaperBatch {
		r = append(r, fmt.Sprintf("batch %d (paper: %d)", s.BatchSize, PaperBatch))
	}
	if s.Limit > 0 {
		r = append(r, fmt.Sprintf("at most %d training images, a seeded sample (paper: all)", s.Limit))
	}
	if s.TestLimit > 0 {
		r = append(r, fmt.Sprintf("at most %d images per test set, a seeded sample (paper: all)", s.TestLimit))
	}
	if s.ValFraction > 0 {
		r = append(r, fmt.Sprintf("%.0f%% of the training images held out for validation (paper: none; the final epoch is tested)", 100*s.ValFraction))
	}
	if s.BackboneWeights == "" {
		r = append(r, "backbone from random initialisation (paper: ImageNet Res2Net-50)")
	}
	if s.Seeds > 1 {
		r = append(r, fmt.Sprintf("%d seeds, mean ± sample std (paper: one run, no spread given)", s.Seeds))
	}
	return r
}

// identity is what makes two runs of the same spec the same run: a folder started with one
// identity is refused to settings with another.
type identity struct {
	Data, Task, Convention, BackboneWeights                 string
	Test                                                    []string
	Size, Epochs, FrozenEpochs, BatchSize, Limit, TestLimit int
	ValFraction                                             float64
}

func (s *Settings) identity() identity {
	return identity{Data: s.Data, Test: s.Test, Task: s.Task, Convention: s.Convention, BackboneWeights: s.BackboneWeights,
		Size: s.Size, Epochs: s.Epochs, FrozenEpochs: s.FrozenEpochs, BatchSize: s.BatchSize, Limit: s.Limit, TestLimit: s.TestLimit, ValFraction: s.ValFraction}
}

// Absolute makes the folder and file paths absolute, so the runs' recorded paths hold from any
// working directory.
func (s *Settings) Absolute() error {
	abs := func(p *string) error {
		if *p == "" {
			return nil
		}
		a, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = a
		return nil
	}
	if err := abs(&s.Data); err != nil {
		return err
	}
	if err := abs(&s.BackboneWeights); err != nil {
		return err
	}
	s.Test = slices.Clone(s.Test)
	for i := range s.Test {
		if err := abs(&s.Test[i]); err != nil {
			return err
		}
	}
	return nil
}

// settingsFile records, in an experiment folder, the settings its runs were started with.
const settingsFile = "experiment.json"

// ErrSettingsDiffer is returned when a folder's runs were started with other settings.
var ErrSettingsDiffer = errors.New("the folder's runs were started with other settings")

// readFolderSettings reads the settings recorded in an experiment folder.
func readFolderSettings(out string) (Settings, error) {
	var s Settings
	path := filepath.Join(out, settingsFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// checkFolderSettings compares s with the settings recorded in out (if any) and records s.
func checkFolderSettings(out string, s Settings, dry bool) error {
	path := filepath.Join(out, settingsFile)
	if saved, err := readFolderSettings(out); err == nil {
		if diff := differences(saved.identity(), s.identity()); len(diff) > 0 {
			return fmt.Errorf("%s: %w: %s; continue with the same settings or choose another folder", out, ErrSettingsDiffer, strings.Join(diff, "; "))
		}
		s.Seeds = max(saved.Seeds, s.Seeds)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if dry {
		return nil
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(b, '\n'))
}

// differences names each field that differs, with both values.
func differences(was, now identity) []string {
	var d []string
	add := func(name string, a, b any) {
		if fmt.Sprint(a) != fmt.Sprint(b) {
			d = append(d, fmt.Sprintf("%s was %v, now %v", name, a, b))
		}
	}
	add("data", was.Data, now.Data)
	add("test", was.Test, now.Test)
	add("task", was.Task, now.Task)
	add("convention", was.Convention, now.Convention)
	add("backbone weights", was.BackboneWeights, now.BackboneWeights)
	add("size", was.Size, now.Size)
	add("epochs", was.Epochs, now.Epochs)
	add("frozen-backbone epochs", was.FrozenEpochs, now.FrozenEpochs)
	add("batch size", was.BatchSize, now.BatchSize)
	add("limit", was.Limit, now.Limit)
	add("test limit", was.TestLimit, now.TestLimit)
	add("validation fraction", was.ValFraction, now.ValFraction)
	return d
}
