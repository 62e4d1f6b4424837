// Package atomicfile writes files so that a crash leaves either the old file or the complete new
// one, never a torn one: a temporary file in the same folder is written, synced and renamed over
// the target, then the folder is synced (google/renameio's sequence).
package atomicfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/chnet/chnet/internal/regfile"
)

// WriteFunc writes path through a buffered writer that write fills. On any error the temporary
// file is removed and path is left as it was.
func WriteFunc(path string, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return err
	}
	if err = f.Sync(); err != nil {
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	// CreateTemp makes 0600 files; outputs are ordinary files.
	if err = os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	if err = os.Rename(tmp, path); err != nil {
		return err
	}
	if d, derr := os.Open(dir); derr == nil {
		// Best effort: some filesystems refuse to sync a folder; the rename already happened.
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Write writes b to path atomically.
func Write(path string, b []byte) error {
	return WriteFunc(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Copy writes a copy of the regular file src to dst atomically.
func Copy(dst, src string) error {
	f, _, err := regfile.Open(src)
	if err != nil {
		return fmt.Errorf("copy %s: %w", src, err)
	}
	defer f.Close()
	return WriteFunc(dst, func(w io.Writer) error {
		_, err := io.Copy(w, f)
		return err
	})
}

// IsTemp reports whether a file name is one of WriteFunc's temporaries: ".<name>.tmp-<digits>".
func IsTemp(name string) bool {
	i := strings.LastIndex(name, ".tmp-")
	if !strings.HasPrefix(name, ".") || i < 1 || i+len(".tmp-") == len(name) {
		return false
	}
	for _, c := range name[i+len(".tmp-"):] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// RemoveTemps deletes the temporaries that writes killed before their rename left in dir and in
// its sub-folders down to depth levels (0: dir only), and returns their paths. Only the
// folder's owner may call it — with another writer active it would delete that writer's file
// in progress: chnet calls it while holding the folder's lock (internal/dirlock).
func RemoveTemps(dir string, depth int) ([]string, error) {
	var removed []string
	base := strings.Count(filepath.Clean(dir), string(filepath.Separator))
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == dir {
				return err
			}
			return nil // an unreadable sub-folder holds nothing of ours to clean
		}
		if e.IsDir() {
			if strings.Count(filepath.Clean(p), string(filepath.Separator))-base > depth {
				return fs.SkipDir
			}
			return nil
		}
		if e.Type().IsRegular() && IsTemp(e.Name()) {
			if err := os.Remove(p); err != nil {
				return err
			}
			removed = append(removed, p)
		}
		return nil
	})
	return removed, err
}

// Link makes dst a hard link to the regular file src, atomically: a link under a temporary name
// is renamed over dst, so dst is at every moment either its old file or src's. src must itself be
// replaced only by renames (as WriteFunc does), never rewritten in place, or dst would change with
// it. Where the filesystem has no hard links, dst is written as a copy.
func Link(dst, src string) error {
	if a, err := os.Stat(src); err == nil {
		if b, err := os.Stat(dst); err == nil && os.SameFile(a, b) {
			return nil
		}
	}
	dir := filepath.Dir(dst)
	var tmp string
	for i := 0; ; i++ {
		tmp = filepath.Join(dir, fmt.Sprintf(".%s.tmp-%d%d", filepath.Base(dst), time.Now().UnixNano(), i))
		err := os.Link(src, tmp)
		if err == nil {
			break
		}
		if errors.Is(err, fs.ErrExist) && i < 100 {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("link %s: %w", src, err)
		}
		return Copy(dst, src) // no hard links here (EPERM, EXDEV, ENOTSUP...)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("link %s: %w", dst, err)
	}
	// rename(2) of one link of a file over another link of the same file does nothing, leaving
	// the temporary (a race with another writer only; checked above otherwise).
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort, as in WriteFunc
		d.Close()
	}
	return nil
}
