package agentstats

import (
	"sort"

	"github.com/agentwatch/agentwatch/domain"
)

// Accumulator sums contributions in memory, per agent and hour; day buckets are the sum
// of their hours. It is what a rebuild and the in-memory model fold into, built for
// speed: no allocation per Add once an hour bucket and its keys exist.
type Accumulator struct {
	hours map[hourKey]*hourBucket
}

type hourKey struct {
	agent string
	hour  int64 // unix hour
}

type hourBucket struct {
	started  int64
	statuses [len(domain.ExecStatuses)]int64
	outcomes map[domain.Outcome]int64
	failures [4]int64
	errors   map[string]int64
	bins     map[int32]int64
	stages   [len(domain.Stages)]map[int32]int64
}

var failureNames = [4]string{FailureInvocation, FailureEntrypoint, FailureBackgroundTask, FailureMissingCompletion}

// NewAccumulator returns an empty accumulator.
func NewAccumulator() *Accumulator { return &Accumulator{hours: map[hourKey]*hourBucket{}} }

// Add adds sign times c (sign is +1 or -1).
func (a *Accumulator) Add(c *Contribution, sign int64) {
	k := hourKey{agent: c.Agent, hour: floorDiv(c.StartMs, 3_600_000)}
	b := a.hours[k]
	if b == nil {
		b = &hourBucket{outcomes: map[domain.Outcome]int64{}, errors: map[string]int64{}, bins: map[int32]int64{}}
		for i := range b.stages {
			b.stages[i] = map[int32]int64{}
		}
		a.hours[k] = b
	}
	b.started += sign
	for i, s := range domain.ExecStatuses {
		if s == c.ExecStatus {
			b.statuses[i] += sign
		}
	}
	if c.Outcome != "" {
		addKey(b.outcomes, c.Outcome, sign)
	}
	for i, f := range failureNames {
		if f == c.Failure {
			b.failures[i] += sign
		}
	}
	if c.ErrorClass != "" {
		addKey(b.errors, c.ErrorClass, sign)
	}
	if c.HasDuration {
		addKey(b.bins, c.DurationBin, sign)
	}
	for i, ok := range c.HasStage {
		if ok {
			addKey(b.stages[i], c.StageBins[i], sign)
		}
	}
}

func addKey[K comparable](m map[K]int64, k K, d int64) {
	if v := m[k] + d; v != 0 {
		m[k] = v
	} else {
		delete(m, k)
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (b *hourBucket) counters(into Counters) {
	if b.started != 0 {
		into.inc(CounterStarted, b.started)
	}
	for i, n := range b.statuses {
		if n != 0 {
			into.inc(prefixStatus+string(domain.ExecStatuses[i]), n)
		}
	}
	for o, n := range b.outcomes {
		into.inc(prefixOutcome+string(o), n)
	}
	for i, n := range b.failures {
		if n != 0 {
			into.inc(prefixFailure+failureNames[i], n)
		}
	}
	for e, n := range b.errors {
		into.inc(prefixError+e, n)
	}
	for bin, n := range b.bins {
		into.inc(durationCounter(bin), n)
	}
	for i, m := range b.stages {
		for bin, n := range m {
			into.inc(stageCounter(i, bin), n)
		}
	}
}

// Bucket is one agent's bucket in flat form.
type Bucket struct {
	Agent    string
	Bucket   string
	Counters Counters
}

// Buckets returns every non-empty hour and day bucket, sorted by agent then bucket key.
func (a *Accumulator) Buckets() []Bucket {
	byKey := map[[2]string]Counters{}
	for k, b := range a.hours {
		ms := k.hour * 3_600_000
		for _, key := range [2]string{HourKey(ms), DayKey(ms)} {
			id := [2]string{k.agent, key}
			cs := byKey[id]
			if cs == nil {
				cs = Counters{}
				byKey[id] = cs
			}
			b.counters(cs)
		}
	}
	out := make([]Bucket, 0, len(byKey))
	for id, cs := range byKey {
		if len(cs) > 0 {
			out = append(out, Bucket{Agent: id[0], Bucket: id[1], Counters: cs})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Agent != out[j].Agent {
			return out[i].Agent < out[j].Agent
		}
		return out[i].Bucket < out[j].Bucket
	})
	return out
}
