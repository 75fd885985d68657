package simulate

import (
	"io"
	"testing"
)

// BenchmarkGenerate generates a million objects with realistic delivery faults.
func BenchmarkGenerate(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Seed, cfg.Events = 1, 1_000_000
	var n int
	for b.Loop() {
		objs, _, err := Generate(cfg)
		if err != nil {
			b.Fatal(err)
		}
		n += len(objs)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "objects/s")
}

// BenchmarkWriteNDJSON writes a million objects.
func BenchmarkWriteNDJSON(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Seed, cfg.Events = 1, 1_000_000
	objs, _, err := Generate(cfg)
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, o := range objs {
		bytes += int64(len(o.Body) + 1)
	}
	b.SetBytes(bytes)
	for b.Loop() {
		if err := WriteNDJSON(io.Discard, objs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(objs))*float64(b.N)/b.Elapsed().Seconds(), "objects/s")
}
