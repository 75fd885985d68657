package stuck

import (
	"context"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/rowcodec"
)

// Table holds the detector's entries, keyed by sessionId, scheduled by nextCheckMs
// (DueIndex: every entry whose next check is due, earliest first).
const Table = "stuck"

// DueIndex orders entries by their next check.
const DueIndex = "DueIndex"

// Projection is the stuck detector's read model: an entry per session the detector
// watches, scheduled for when it must look next.
type Projection struct {
	cfg Config
}

var _ projections.ReadModel = Projection{}

// New returns the detector's read model; cfg's deadlines schedule the entries a rebuild
// writes.
func New(cfg Config) Projection { return Projection{cfg: cfg} }

// Name is "stuck".
func (Projection) Name() string { return "stuck" }

// Version of the derivation.
func (Projection) Version() int { return 1 }

// Tables declares the entries.
func (Projection) Tables() []projections.Table {
	return []projections.Table{{
		Name: Table, Kind: projections.Documents, Key: "sessionId",
		Schedule: "nextCheckMs",
		Indexes:  []projections.Index{{Name: DueIndex, Sort: "nextCheckMs", ShardAttr: "dueShard"}},
		Expires:  true,
		New:      func() any { return new(Entry) },
		Codec:    entryCodec{},
	}}
}

// Changes writes the session's entry while the detector watches it, due at once so
// that the detector looks at the change (it may resolve an open alert), and once more
// when the session stops being watched. A session that was never watched — new in a
// page and already done, as most are — costs no write. A replay (rebuild) schedules
// entries for their deadlines still ahead only: what is overdue is history.
func (p Projection) Changes(before, after *domain.Session, env projections.Env, out *projections.Changes) {
	e, open := EntryOf(after)
	if e.Outcome == domain.OutcomeEmpty {
		return
	}
	if _, wasOpen := EntryOf(before); !open && !wasOpen {
		return
	}
	due := env.NowMs
	if env.Replay {
		_, due = Evaluate(&e, 0, 0, time.UnixMilli(env.NowMs), &p.cfg)
	}
	out.Puts = append(out.Puts, projections.Put{Table: Table, Key: e.SessionID, Doc: &e, Schedule: due})
}

// Due is an entry and its stored next-check time.
type Due struct {
	Entry       Entry
	NextCheckMs int64
}

// Store reads and reschedules entries through a backend's ports.
type Store struct {
	docs  projections.DocumentReader
	sched projections.Scheduler
}

// NewStore returns the detector's view of its entries.
func NewStore(docs projections.DocumentReader, sched projections.Scheduler) Store {
	return Store{docs: docs, sched: sched}
}

// DueEntries returns up to limit entries whose next check is at or before atMs,
// earliest first.
func (s Store) DueEntries(ctx context.Context, atMs int64, limit int) ([]Due, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := s.docs.QueryIndex(ctx, projections.IndexQuery{Table: Table, Index: DueIndex, To: atMs, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("due stuck entries: %w", err)
	}
	out := make([]Due, len(rows))
	for i, r := range rows {
		out[i] = Due{Entry: *r.Doc.(*Entry), NextCheckMs: r.Schedule}
	}
	return out, nil
}

// Reschedule moves entries' next checks (or drops entries), each only if its next check
// is still the one read: an entry a commit rewrote meanwhile is due again anyway.
func (s Store) Reschedule(ctx context.Context, moves []projections.Move) (int, error) {
	n, err := s.sched.Reschedule(ctx, Table, moves)
	if err != nil {
		return n, fmt.Errorf("reschedule %d stuck entries: %w", len(moves), err)
	}
	return n, nil
}

// Entries returns up to limit entries after session id after, in session id order, and
// the cursor of the next page ("" when none follows).
func (s Store) Entries(ctx context.Context, after string, limit int) ([]Entry, string, error) {
	rows, err := s.docs.ListDocuments(ctx, Table, after, limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("stuck entries: %w", err)
	}
	next := ""
	if len(rows) > limit {
		rows = rows[:limit]
		next = rows[limit-1].Key
	}
	out := make([]Entry, len(rows))
	for i, r := range rows {
		out[i] = *r.Doc.(*Entry)
	}
	return out, next, nil
}

// Entries returns the entries of a state that the detector watches (not closed), sorted
// by session id (tests).
func Entries(st *projections.State) []Entry {
	var out []Entry
	for _, r := range st.Documents(Table) {
		if e := r.Doc.(*Entry); !e.Closed {
			out = append(out, *e)
		}
	}
	return out
}

// entryCodec keeps entries compactly.
type entryCodec struct{}

const entryCodecV1 = 1

// Encode appends the entry.
func (entryCodec) Encode(b []byte, doc any) []byte {
	e := doc.(*Entry)
	w := rowcodec.Writer{B: b}
	w.Byte(entryCodecV1)
	w.Str(e.SessionID)
	w.Str(e.Agent)
	w.Str(e.ExecutionArn)
	w.Str(string(e.LastStatus))
	w.Varint(e.LastEventMs)
	w.Str(string(e.Stage))
	w.Varint(e.StageStartMs)
	w.Str(string(e.ExecStatus))
	w.Varint(e.ExecEndMs)
	w.Str(string(e.Outcome))
	var flags byte
	if e.Mismatch {
		flags |= 1
	}
	if e.Closed {
		flags |= 2
	}
	w.Byte(flags)
	return w.B
}

// Decode fills an *Entry.
func (entryCodec) Decode(b []byte, doc any) error {
	e := doc.(*Entry)
	r := rowcodec.NewReader(b)
	if r.Byte() != entryCodecV1 {
		return rowcodec.ErrMalformed
	}
	e.SessionID, e.Agent, e.ExecutionArn, e.LastStatus = r.Str(), r.Str(), r.Str(), domain.Status(r.Str())
	e.LastEventMs = r.Varint()
	e.Stage = domain.Stage(r.Str())
	e.StageStartMs = r.Varint()
	e.ExecStatus = domain.ExecStatus(r.Str())
	e.ExecEndMs = r.Varint()
	e.Outcome = domain.Outcome(r.Str())
	flags := r.Byte()
	if flags > 3 {
		r.Fail()
	}
	e.Mismatch, e.Closed = flags&1 != 0, flags&2 != 0
	return r.Done()
}

// Transient reports a closed entry: it stands only until the detector's last look.
func (Projection) Transient(table string, doc any) bool {
	e, ok := doc.(*Entry)
	return table == Table && ok && e.Closed
}
