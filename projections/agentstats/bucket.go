package agentstats

import (
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Bucket key prefixes (the SK of a stats item).
const (
	HourPrefix = "HOUR#"
	DayPrefix  = "DAY#"
)

// HourKey and DayKey name the buckets a session start falls into.
func HourKey(startMs int64) string {
	return HourPrefix + time.UnixMilli(startMs).UTC().Format("2006-01-02T15")
}

// DayKey names the day bucket of a session start.
func DayKey(startMs int64) string {
	return DayPrefix + time.UnixMilli(startMs).UTC().Format("2006-01-02")
}

// Counter names of a bucket's flat form.
const (
	CounterStarted    = "started"
	prefixStatus      = "status."
	prefixOutcome     = "outcome."
	prefixFailure     = "failure."
	prefixError       = "error."
	prefixDurationBin = "dur."
	prefixStageBin    = "stage."
)

// stageCounter names the counter of one bin of a stage's duration sketch.
func stageCounter(stage int, bin int32) string { return binCounter(stage, bin) }

// durationCounter names the counter of one bin of the session duration sketch.
func durationCounter(bin int32) string { return binCounter(-1, bin) }

// binNames caches counter names of sketch bins: there are only a few hundred bins per
// sketch, and materializing buckets names them over and over.
var binNames sync.Map // binKey -> string

type binKey struct {
	stage int
	bin   int32
}

func binCounter(stage int, bin int32) string {
	k := binKey{stage, bin}
	if v, ok := binNames.Load(k); ok {
		return v.(string)
	}
	var name string
	if stage < 0 {
		name = prefixDurationBin + strconv.Itoa(int(bin))
	} else {
		name = prefixStageBin + string(domain.Stages[stage]) + "." + strconv.Itoa(int(bin))
	}
	binNames.Store(k, name)
	return name
}

// Counters are the flat form of a bucket that stores keep: counter name -> value. Every
// change is an increment, so stores apply deltas atomically and commutatively.
type Counters map[string]int64

// Add adds sign times c to the counters (sign is +1 or -1); zero counters are deleted
// so that equal buckets have equal maps.
func (cs Counters) Add(c *Contribution, sign int64) {
	cs.inc(CounterStarted, sign)
	if c.ExecStatus != "" {
		cs.inc(prefixStatus+string(c.ExecStatus), sign)
	}
	if c.Outcome != "" {
		cs.inc(prefixOutcome+string(c.Outcome), sign)
	}
	if c.Failure != "" {
		cs.inc(prefixFailure+c.Failure, sign)
	}
	if c.ErrorClass != "" {
		cs.inc(prefixError+c.ErrorClass, sign)
	}
	if c.HasDuration {
		cs.inc(durationCounter(c.DurationBin), sign)
	}
	for i, ok := range c.HasStage {
		if ok {
			cs.inc(stageCounter(i, c.StageBins[i]), sign)
		}
	}
}

func (cs Counters) inc(k string, d int64) {
	if v := cs[k] + d; v != 0 {
		cs[k] = v
	} else {
		delete(cs, k)
	}
}

// Delta is a change to one bucket of one agent.
type Delta struct {
	Agent    string
	Bucket   string
	Counters Counters
}

// Deltas returns the bucket changes that turn contribution before into after (either
// may be absent). Deltas of one bucket are merged; empty ones are dropped.
func Deltas(before *Contribution, hadBefore bool, after *Contribution, hasAfter bool) []Delta {
	if hadBefore && hasAfter && *before == *after {
		return nil
	}
	var out []Delta
	add := func(c *Contribution, sign int64) {
		for _, key := range [2]string{HourKey(c.StartMs), DayKey(c.StartMs)} {
			i := -1
			for j := range out {
				if out[j].Agent == c.Agent && out[j].Bucket == key {
					i = j
					break
				}
			}
			if i < 0 {
				out = append(out, Delta{Agent: c.Agent, Bucket: key, Counters: Counters{}})
				i = len(out) - 1
			}
			out[i].Counters.Add(c, sign)
		}
	}
	if hadBefore {
		add(before, -1)
	}
	if hasAfter {
		add(after, +1)
	}
	kept := out[:0]
	for _, d := range out {
		if len(d.Counters) > 0 {
			kept = append(kept, d)
		}
	}
	return kept
}

// Stats is the read view of one bucket.
type Stats struct {
	Agent    string           `json:"agentName"`
	Bucket   string           `json:"bucket"`
	Started  int64            `json:"started"`
	Statuses map[string]int64 `json:"statuses"`
	Outcomes map[string]int64 `json:"outcomes"`
	Failures map[string]int64 `json:"failures"`
	// Duration quantiles in seconds.
	Duration  Quantiles    `json:"durationSeconds"`
	TopErrors []ErrorCount `json:"topErrors"`
	// Stages holds the duration quantiles of each lifecycle stage, in seconds.
	Stages map[string]Quantiles `json:"stageSeconds"`
}

// ErrorCount is one error class and how often it occurred.
type ErrorCount struct {
	Class string `json:"class"`
	Count int64  `json:"count"`
}

// TopErrors is how many error classes Stats lists.
const TopErrors = 5

// StatsOf reads a bucket's counters.
func StatsOf(agent, bucket string, cs Counters) Stats {
	st := Stats{Agent: agent, Bucket: bucket, Statuses: map[string]int64{}, Outcomes: map[string]int64{},
		Failures: map[string]int64{}, TopErrors: []ErrorCount{}}
	bins := map[int32]int64{}
	stageBins := map[string]map[int32]int64{}
	for k, v := range cs {
		switch {
		case k == CounterStarted:
			st.Started = v
		case strings.HasPrefix(k, prefixStatus):
			st.Statuses[k[len(prefixStatus):]] = v
		case strings.HasPrefix(k, prefixOutcome):
			st.Outcomes[k[len(prefixOutcome):]] = v
		case strings.HasPrefix(k, prefixFailure):
			st.Failures[k[len(prefixFailure):]] = v
		case strings.HasPrefix(k, prefixError):
			st.TopErrors = append(st.TopErrors, ErrorCount{Class: k[len(prefixError):], Count: v})
		case strings.HasPrefix(k, prefixStageBin):
			rest := k[len(prefixStageBin):]
			if i := strings.LastIndexByte(rest, '.'); i > 0 {
				if b, err := strconv.Atoi(rest[i+1:]); err == nil {
					m := stageBins[rest[:i]]
					if m == nil {
						m = map[int32]int64{}
						stageBins[rest[:i]] = m
					}
					m[int32(b)] += v
				}
			}
		case strings.HasPrefix(k, prefixDurationBin):
			if b, err := strconv.Atoi(k[len(prefixDurationBin):]); err == nil {
				bins[int32(b)] += v
			}
		}
	}
	sort.Slice(st.TopErrors, func(i, j int) bool {
		a, b := st.TopErrors[i], st.TopErrors[j]
		return a.Count > b.Count || (a.Count == b.Count && a.Class < b.Class)
	})
	if len(st.TopErrors) > TopErrors {
		st.TopErrors = st.TopErrors[:TopErrors]
	}
	st.Duration = QuantilesOf(bins)
	st.Stages = make(map[string]Quantiles, len(stageBins))
	for name, b := range stageBins {
		st.Stages[name] = QuantilesOf(b)
	}
	return st
}

// Merge adds every counter of src to dst (to sum buckets, e.g. days of a range).
func Merge(dst, src Counters) {
	for k, v := range src {
		dst.inc(k, v)
	}
}

// BucketRange returns the inclusive bounds of the bucket keys of prefix (HourPrefix or
// DayPrefix) whose bucket start lies in [from, to]; zero times leave a side open. The
// open upper bound is prefix+"~": '~' sorts after every character of a bucket key.
func BucketRange(prefix string, from, to time.Time) (lo, hi string) {
	unit, layout := time.Hour, "2006-01-02T15"
	if prefix == DayPrefix {
		unit, layout = 24*time.Hour, "2006-01-02"
	}
	lo, hi = prefix, prefix+"~"
	if !from.IsZero() {
		f := from.UTC()
		start := f.Truncate(unit) // UTC: hours and days are whole multiples since year 1
		if start.Before(f) {
			start = start.Add(unit)
		}
		lo = prefix + start.Format(layout)
	}
	if !to.IsZero() {
		hi = prefix + to.UTC().Format(layout)
	}
	return lo, hi
}
