package agentstats

import (
	"context"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Table holds the stats buckets: partition agentName, sort key the bucket
// (HOUR#2024-11-04T10, DAY#2024-11-04), one counter per attribute.
const Table = "agent_stats"

// Projection is the per-agent statistics as a read model.
type Projection struct{}

var (
	_ projections.ReadModel   = Projection{}
	_ projections.BulkDeriver = Projection{}
)

// New returns the agent statistics read model.
func New() Projection { return Projection{} }

// Name is "agentstats".
func (Projection) Name() string { return "agentstats" }

// Version of the derivation.
func (Projection) Version() int { return 1 }

// Tables declares the buckets.
func (Projection) Tables() []projections.Table {
	return []projections.Table{{Name: Table, Kind: projections.Counters, Partition: "agentName", Sort: "bucket"}}
}

// Changes removes the session's old contribution from its buckets and adds the new one.
func (Projection) Changes(before, after *domain.Session, _ projections.Env, out *projections.Changes) {
	cb, okb := ContributionOf(before)
	ca, oka := ContributionOf(after)
	for _, d := range Deltas(&cb, okb, &ca, oka) {
		out.Adds = append(out.Adds, projections.Add{Table: Table, Partition: d.Agent, Sort: d.Bucket, Counters: d.Counters})
	}
}

// DeriveAll sums every session's contribution in an Accumulator: one row per bucket.
func (Projection) DeriveAll(sessions []*domain.Session, _ projections.Env) projections.Changes {
	acc := NewAccumulator()
	for _, s := range sessions {
		if c, ok := ContributionOf(s); ok {
			acc.Add(&c, 1)
		}
	}
	var out projections.Changes
	for _, b := range acc.Buckets() {
		out.Adds = append(out.Adds, projections.Add{Table: Table, Partition: b.Agent, Sort: b.Bucket, Counters: b.Counters})
	}
	return out
}

// Query selects stats buckets.
type Query struct {
	// AgentName selects one agent; "" selects all.
	AgentName string
	// Granularity is HourPrefix or DayPrefix; "" selects both.
	Granularity string
	// From and To bound the bucket start, inclusive; zero means unbounded.
	From, To time.Time
}

// Prefixes checks q and returns the bucket prefixes it selects: its granularity, or
// both (days first) when it is "".
func (q *Query) Prefixes() ([]string, error) {
	var prefixes []string
	switch q.Granularity {
	case HourPrefix, DayPrefix:
		prefixes = []string{q.Granularity}
	case "":
		prefixes = []string{DayPrefix, HourPrefix}
	default:
		return nil, &domain.FieldError{Field: "granularity", Reason: fmt.Sprintf("must be %q or %q", HourPrefix, DayPrefix)}
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.To.Before(q.From) {
		return nil, &domain.FieldError{Field: "to", Reason: "must not be before from"}
	}
	return prefixes, nil
}

// Store reads buckets through a backend's counters reader.
type Store struct {
	counters projections.CounterReader
}

// NewStore returns the stats queries over counters.
func NewStore(counters projections.CounterReader) Store { return Store{counters: counters} }

// Stats returns the buckets of one agent (or all) at one granularity (or both) whose
// start lies in [From, To], sorted by agent then bucket.
func (s Store) Stats(ctx context.Context, q Query) ([]Bucket, error) {
	prefixes, err := q.Prefixes()
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var rows []projections.CounterRow
	for _, p := range prefixes {
		lo, hi := BucketRange(p, q.From, q.To)
		if lo > hi {
			continue
		}
		r, err := s.counters.ReadCounters(ctx, Table, q.AgentName, lo, hi)
		if err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		rows = append(rows, r...)
	}
	projections.SortCounterRows(rows)
	out := make([]Bucket, len(rows))
	for i, r := range rows {
		out[i] = Bucket{Agent: r.Partition, Bucket: r.Sort, Counters: r.Counters}
	}
	return out, nil
}

// Buckets returns every bucket of a state, sorted by agent then bucket (tests).
func Buckets(st *projections.State) []Bucket {
	rows := st.CounterRows(Table)
	out := make([]Bucket, len(rows))
	for i, r := range rows {
		out[i] = Bucket{Agent: r.Partition, Bucket: r.Sort, Counters: r.Counters}
	}
	return out
}
