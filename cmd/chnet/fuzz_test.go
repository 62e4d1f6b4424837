package main

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/chnet/chnet/chnet/zoo"
	"github.com/chnet/chnet/internal/badinput"
	"github.com/chnet/chnet/train"
	"github.com/chnet/chnet/train/data"
)

// FuzzRunConfig: a resumed run takes config.json as it stands. Whatever the file holds, reading
// it never panics, and what is accepted is a recipe the flags would accept — one that can be
// written back (a NaN could not: issue 9, case 10) and reads back the same.
func FuzzRunConfig(f *testing.F) {
	good := runConfig{Model: zoo.Spec{Arch: "chnet", Backbone: "v1", HeadWidth: 32, HeadKernel: 1, Factorized: true, InputSize: 64}, Recipe: train.OfficialConfig(3), Data: "data", BatchSize: 4, Size: 64, Sizes: []int{32, 64},
		Augment: true, Seed: 1, ValFrac: 0.1, Backend: "cpu", Version: "test"}
	b, err := json.Marshal(good)
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{b}
	for _, edit := range []func(*runConfig){
		func(r *runConfig) { r.BatchSize = 0 },
		func(r *runConfig) { r.Size = 3000000000 },
		func(r *runConfig) { r.Sizes = []int{100000} },
		func(r *runConfig) { r.Model.HeadWidth = 5000000 },
		func(r *runConfig) { r.Model.Arch = "resnet" },
		func(r *runConfig) { r.Folds, r.Val = 3, "val" },
		func(r *runConfig) { r.Recipe.Loss = 7 },
	} {
		r := good
		r.Sizes = append([]int(nil), good.Sizes...)
		edit(&r)
		b, _ := json.Marshal(r)
		seeds = append(seeds, b)
	}
	seeds = append(seeds, []byte(`{"recipe":{"momentum":1e999}}`), []byte(`[]`), []byte(`{"batch_size":"4"}`))
	badinput.Corpus(f, "FuzzRunConfig", seeds)
	f.Fuzz(func(t *testing.T, b []byte) {
		rc, err := parseRunConfig(b, data.DefaultMaxPixels)
		if err != nil {
			return
		}
		out, err := json.Marshal(rc)
		if err != nil {
			t.Fatalf("an accepted config cannot be written back: %v", err)
		}
		again, err := parseRunConfig(out, data.DefaultMaxPixels)
		if err != nil || !reflect.DeepEqual(again, rc) {
			t.Fatalf("written back and read again: %+v, %v; was %+v", again, err, rc)
		}
	})
}
