package main

import (
	"errors"
	"fmt"

	"github.com/chnet/chnet/internal/atomicfile"
	"github.com/chnet/chnet/internal/dirlock"
)

// claimFolder takes the lock of an output folder that exists, so that a second chnet process
// writing there is refused (naming flag) instead of mixing its files in, and removes the
// temporaries that killed writes left in it down to depth sub-folder levels: with the lock held
// none can belong to a live writer. It returns the lock's release and the paths removed.
func claimFolder(dir, flag string, depth int) (release func(), removed []string, err error) {
	release, err = dirlock.Lock(dir)
	if errors.Is(err, dirlock.ErrLocked) {
		return nil, nil, usagef(flag, "%s is in use by another chnet process; wait for it to finish or choose another folder", dir)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s %w", flag, err)
	}
	removed, err = atomicfile.RemoveTemps(dir, depth)
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("%s %s: removing temporaries of killed writes: %w", flag, dir, err)
	}
	return release, removed, nil
}
