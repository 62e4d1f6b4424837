package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/chnet/chnet/internal/atomicfile"
)

// Repair makes checkpoint_best and checkpoint_final agree with the state a resumed run has just
// loaded from checkpoint_latest (tr.State). Each is written right after latest at the epoch it
// records, so a kill while writing it leaves it missing or holding an older epoch while latest
// already records the new one. When latest stands exactly at the epoch the file should hold, it
// is rebuilt as a link to latest — the file the interrupted write would have produced. It
// returns one line per file repaired or found beyond repair.
func (tr *Trainer) Repair() ([]string, error) {
	var notes []string
	atEnd := tr.State.Step == 0 // latest holds the weights at the end of epoch tr.State.Epoch
	type want struct {
		name  string
		epoch int
		ok    func(State) bool
	}
	var files []want
	if tr.State.HasBest {
		files = append(files, want{BestName, tr.State.BestEpoch, func(s State) bool { return s.Epoch == tr.State.BestEpoch && s.Step == 0 }})
	}
	if tr.State.Finished {
		files = append(files, want{FinalName, tr.State.Epoch, func(s State) bool { return s.Finished && s.Epoch == tr.State.Epoch }})
	}
	for _, f := range files {
		path := filepath.Join(tr.Dir, f.name)
		st, err := savedState(path)
		if err == nil && f.ok(st) {
			continue
		}
		why := "is missing"
		switch {
		case err == nil:
			why = fmt.Sprintf("holds epoch %d", st.Epoch)
		case !errors.Is(err, fs.ErrNotExist):
			why = fmt.Sprintf("is unreadable (%v)", err)
		}
		if !atEnd || tr.State.Epoch != f.epoch {
			notes = append(notes, fmt.Sprintf("warning: %s %s, but should hold epoch %d, which %s no longer has; it is written again when a later epoch qualifies",
				f.name, why, f.epoch, LatestName))
			continue
		}
		if err := atomicfile.Link(path, filepath.Join(tr.Dir, LatestName)); err != nil {
			return notes, fmt.Errorf("repair %s: %w", f.name, err)
		}
		notes = append(notes, fmt.Sprintf("repaired %s: it %s, should hold epoch %d; rebuilt from %s, which records that epoch", f.name, why, f.epoch, LatestName))
	}
	return notes, nil
}

// savedState reads the training state of a checkpoint, checking the whole file.
func savedState(path string) (State, error) {
	var st State
	ck, err := LoadCheckpoint(path)
	if err != nil {
		return st, err
	}
	if ck.TrainState == nil {
		return st, fmt.Errorf("%s: no training state", path)
	}
	if err := json.Unmarshal(ck.TrainState, &st); err != nil {
		return st, fmt.Errorf("%s: training state: %w", path, err)
	}
	return st, nil
}
