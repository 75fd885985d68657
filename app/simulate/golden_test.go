package simulate

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// TestGolden pins the output of a small seeded simulation: a change of the bytes is a
// change of the traffic every seed produces, to be made on purpose (go test -update).
func TestGolden(t *testing.T) {
	cfg := Config{Seed: 1, Sessions: 14, DuplicateRate: 0.1, ReorderRate: 0.1, MalformedRate: 0.05,
		Weights: map[Scenario]float64{}}
	for _, sc := range Scenarios {
		cfg.Weights[sc] = 1
	}
	objs, _ := mustGenerate(t, cfg)
	got := ndjson(t, objs)
	path := filepath.Join("testdata", "seed1.ndjson")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s (run go test -update if the change is intended)", path)
	}
}
