package badinput

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// SeedEnv, set to 1, makes Corpus (re)write the committed seed files.
const SeedEnv = "CHNET_WRITE_FUZZ_SEEDS"

// Corpus adds a fuzz target's generated seeds and checks its committed seed corpus,
// testdata/fuzz/<name>/: one file per seed, named by its hash, in the go test fuzz v1 encoding,
// which `go test` replays and `go test -fuzz` starts from (crashers the fuzzer finds are saved
// there too). With CHNET_WRITE_FUZZ_SEEDS=1 the files are written from the generator; otherwise
// the folder must hold at least as many seeds as the generator makes. (Byte-for-byte equality is
// not asked: the image encoders behind some seeds may change between Go releases.)
func Corpus(f *testing.F, name string, seeds [][]byte) {
	f.Helper()
	unique := map[[32]byte]bool{}
	for _, s := range seeds {
		f.Add(s)
		unique[sha256.Sum256(s)] = true
	}
	dir := filepath.Join("testdata", "fuzz", name)
	if os.Getenv(SeedEnv) != "1" {
		committed, _ := filepath.Glob(filepath.Join(dir, "seed-*"))
		if len(committed) < len(unique) {
			f.Fatalf("%s holds %d committed seeds, the generator makes %d; write them with %s=1 go test -run %s",
				dir, len(committed), len(unique), SeedEnv, name)
		}
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		sum := sha256.Sum256(s)
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%s)\n", strconv.Quote(string(s)))
		if err := os.WriteFile(filepath.Join(dir, "seed-"+hex.EncodeToString(sum[:8])), []byte(body), 0o644); err != nil {
			f.Fatal(err)
		}
	}
}
