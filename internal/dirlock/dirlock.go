// Package dirlock gives a folder to one process at a time: chnet holds a run folder's lock while
// it writes there, so a second run started on the same folder is refused instead of mixing its
// config, log and checkpoints with the first one's. The lock is flock(2) on the folder itself:
// the kernel drops it when the process ends, however it ends (SIGKILL included), so there is no
// lock file to clean up and no stale lock to break.
package dirlock

import "errors"

// ErrLocked reports a folder whose lock another process (or another Lock call) holds.
var ErrLocked = errors.New("in use by another chnet process")

// Lock takes dir's lock without waiting. Release gives it back; it is safe to call twice.
func Lock(dir string) (release func(), err error) { return lock(dir) }
