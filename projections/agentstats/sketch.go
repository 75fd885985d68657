package agentstats

import (
	"math"
	"sort"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// RelativeAccuracy of the duration quantiles.
const RelativeAccuracy = 0.01

// minDurationSeconds stands in for zero durations, which a log mapping cannot index.
const minDurationSeconds = 0.001

var durationMapping = func() mapping.IndexMapping {
	m, err := mapping.NewLogarithmicMapping(RelativeAccuracy)
	if err != nil {
		panic(err) // a constant argument: cannot fail
	}
	return m
}()

// DurationBin is the DDSketch bin (logarithmic mapping, 1 % relative accuracy) of d.
// Buckets keep bin counts rather than an opaque sketch so that a session's old
// contribution can be subtracted exactly and stores can increment bins atomically;
// the counts are a DDSketch's store, and quantiles are read back through ddsketch.
func DurationBin(d time.Duration) int32 {
	s := d.Seconds()
	if s < minDurationSeconds {
		s = minDurationSeconds
	}
	return int32(durationMapping.Index(s))
}

// Quantiles are duration quantiles in seconds.
type Quantiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
}

// SketchOf builds a DDSketch from bin counts.
func SketchOf(bins map[int32]int64) *ddsketch.DDSketch {
	st := store.NewDenseStore()
	keys := make([]int, 0, len(bins))
	for k := range bins {
		keys = append(keys, int(k))
	}
	sort.Ints(keys)
	for _, k := range keys {
		if n := bins[int32(k)]; n > 0 {
			st.AddWithCount(k, float64(n))
		}
	}
	return ddsketch.NewDDSketch(durationMapping, st, store.NewDenseStore())
}

// QuantilesOf reads p50/p90/p99 from bin counts.
func QuantilesOf(bins map[int32]int64) Quantiles {
	sk := SketchOf(bins)
	q := Quantiles{Count: int64(math.Round(sk.GetCount()))}
	if q.Count == 0 {
		return q
	}
	vals, err := sk.GetValuesAtQuantiles([]float64{0.5, 0.9, 0.99})
	if err != nil {
		return q
	}
	q.P50, q.P90, q.P99 = round3(vals[0]), round3(vals[1]), round3(vals[2])
	return q
}

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
