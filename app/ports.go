package app

import (
	"context"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// AppendResult says what appending one event did.
type AppendResult int

// Append results.
const (
	// Appended: the event is new and now in the journal.
	Appended AppendResult = iota
	// Duplicate: an item with the same PK and SK was already there; it was left as is.
	Duplicate
)

// JournalAppender appends events to the session journal. Appends are idempotent: an
// event whose PK+SK already exists is reported Duplicate and never overwrites.
// Implementations must be safe for concurrent use.
type JournalAppender interface {
	// Append appends events and returns one result per event, in order. An error means
	// some events may not have been appended; retrying the whole call is safe.
	Append(ctx context.Context, events []domain.Event) ([]AppendResult, error)
}

// SessionEventsQuery selects events of one session, as the queries of seed 002 do.
type SessionEventsQuery struct {
	// Descending returns the newest first.
	Descending bool
	// Status keeps only events with this status.
	Status domain.Status
	// StatusContains keeps only events whose status contains it (e.g. "FAILED").
	StatusContains string
	// After keeps only events with SK > "EVENT#"+After (seed 002 "monitoring").
	After time.Time
	// Limit caps the count (0: no cap), applied after the order.
	Limit int
}

// JournalReader reads one session's events.
type JournalReader interface {
	SessionEvents(ctx context.Context, sessionID string, q SessionEventsQuery) ([]domain.Event, error)
}

// JournalScanner reads the whole journal for a rebuild.
type JournalScanner interface {
	// Scan calls fn with batches of events until the journal is exhausted, fn fails or
	// ctx is done. Order across sessions is unspecified; the fold does not need it. fn
	// runs on the calling goroutine, never concurrently with itself.
	Scan(ctx context.Context, opts ScanOptions, fn func(batch []domain.Event) error) error
}

// ScanOptions configure a journal scan.
type ScanOptions struct {
	// Parallel is how many parts of the journal are read at once (DynamoDB: Scan
	// segments; SQLite: readers over ranges of positions, at most its read pool). 0
	// means the store's default.
	Parallel int
}

// MaxScanParallel bounds ScanOptions.Parallel: DynamoDB's largest TotalSegments.
const MaxScanParallel = 1_000_000

// Check reports a Parallel out of range, naming the field.
func (o ScanOptions) Check() error {
	if o.Parallel < 0 || o.Parallel > MaxScanParallel {
		return &domain.FieldError{Field: "parallel", Reason: fmt.Sprintf("%d: must be between 1 and %d (0: the store's default)", o.Parallel, MaxScanParallel)}
	}
	return nil
}

// VersionedSession is a session aggregate with its store version (0: not stored yet).
type VersionedSession struct {
	Session domain.Session
	Version int64
}

// SessionWrite stores a session aggregate if its version is still Version (0: the
// session must not exist yet); the stored version becomes Version+1.
type SessionWrite struct {
	Session domain.Session
	Version int64
}

// SessionChange is one session's part of a projection step: its new state, under the
// version it was derived from, and every read model's changes for it.
type SessionChange struct {
	SessionWrite
	Changes projections.Changes
}

// Batch is everything one projection step changes. A store commits each session's
// change atomically with its version check — so that the read models' changes of a
// session land exactly when the session moves from version v to v+1, once — and
// commits the whole batch at once when it can (SQLite: always; DynamoDB: when it fits
// in one transaction, otherwise in transactions of whole sessions). When a session's
// version moved, the store fails with domain.ErrConflict (wrapped) having written
// nothing of that session (nor, in one transaction, of the others), and the caller
// reloads and retries: sessions already committed then change nothing.
type Batch struct {
	Sessions []SessionChange
	// Checkpoint, if set, is stored with the last of the batch's writes.
	Checkpoint *Checkpoint
}

// Checkpoint is a named position in a feed.
type Checkpoint struct {
	Name     string
	Position string
}

// SessionLoader loads session aggregates.
type SessionLoader interface {
	// LoadSessions returns the stored sessions among ids with their versions; sessions
	// not stored are absent from the map.
	LoadSessions(ctx context.Context, ids []string) (map[string]VersionedSession, error)
}

// ProjectionStore is what the projector needs: load sessions, commit batches.
type ProjectionStore interface {
	SessionLoader
	// Commit writes a batch (see Batch).
	Commit(ctx context.Context, b Batch) error
}

// CheckpointStore keeps feed positions outside projection commits.
type CheckpointStore interface {
	// GetCheckpoint returns the position stored under name, "" when none.
	GetCheckpoint(ctx context.Context, name string) (string, error)
	// SetCheckpoint stores position under name.
	SetCheckpoint(ctx context.Context, name, position string) error
	// DeleteCheckpoint removes the checkpoint name (none: nothing to do).
	DeleteCheckpoint(ctx context.Context, name string) error
}

// StatsQuery selects stats buckets.
type StatsQuery = agentstats.Query

// SessionConflict is the error of a commit that found a session no longer at the
// version it was loaded at (Version 0: it did not exist, and now does). It matches
// domain.ErrConflict.
type SessionConflict struct {
	SessionID string
	Version   int64
}

func (e *SessionConflict) Error() string {
	if e.Version == 0 {
		return fmt.Sprintf("session %s already exists: %v", e.SessionID, domain.ErrConflict)
	}
	return fmt.Sprintf("session %s is no longer at version %d: %v", e.SessionID, e.Version, domain.ErrConflict)
}

func (e *SessionConflict) Unwrap() error { return domain.ErrConflict }

// StatsReader reads stats buckets.
type StatsReader interface {
	// Stats returns the buckets q selects, sorted by agent then bucket.
	Stats(ctx context.Context, q StatsQuery) ([]agentstats.Bucket, error)
}

// StuckStore is the detector's view of the stuck read model.
type StuckStore interface {
	// DueEntries returns up to limit entries whose next check is at or before atMs,
	// earliest first, with their stored next-check times.
	DueEntries(ctx context.Context, atMs int64, limit int) ([]DueEntry, error)
	// Reschedule moves entries' next checks (or drops them), each only if its next check
	// is still Prev; it reports how many it moved.
	Reschedule(ctx context.Context, moves []projections.Move) (int, error)
	// Entries returns up to limit entries after session id after, in session id order,
	// and the session id to continue after ("" when none follows).
	Entries(ctx context.Context, after string, limit int) ([]stuck.Entry, string, error)
}

// DueEntry is an entry and its stored next-check time.
type DueEntry = stuck.Due

// ReadModelStore is a backend's read-model side for any registered table: the ports
// each read model's queries are built on, and session loading.
type ReadModelStore interface {
	ProjectionStore
	projections.DocumentReader
	projections.CounterReader
	projections.Scheduler
}

// AlertState is where an alert is in the outbox.
type AlertState string

// Alert states.
const (
	AlertPending AlertState = "pending" // decided, not yet delivered
	AlertSent    AlertState = "sent"
)

// Alert is one alert in the outbox: exactly one per session and kind, ever.
type Alert struct {
	SessionID    string           `json:"sessionId"`
	Kind         stuck.Kind       `json:"kind"`
	AgentName    string           `json:"agentName"`
	ExecutionArn string           `json:"executionArn,omitempty"`
	Stage        domain.Stage     `json:"stage,omitempty"`
	LastStatus   domain.Status    `json:"lastStatus,omitempty"`
	LastEventAt  time.Time        `json:"lastEventAt"`
	OverdueBy    string           `json:"overdueBy,omitempty"`
	Diagnosis    domain.Diagnosis `json:"diagnosis"`
	Link         string           `json:"link,omitempty"`
	RaisedAt     time.Time        `json:"raisedAt"`
	// ResolvedAt is set when a later event resolved the problem (see kind recovered).
	ResolvedAt *time.Time `json:"resolvedAt,omitempty"`
	// AckedAt is set when an operator acknowledged the alert.
	AckedAt  *time.Time `json:"ackedAt,omitempty"`
	AckedBy  string     `json:"ackedBy,omitempty"`
	State    AlertState `json:"state"`
	Attempts int        `json:"attempts"`
}

// AlertFilter selects alerts for listing and counting.
type AlertFilter struct {
	// State is one of the AlertFilter* states; "" is AlertFilterAll.
	State string
	// Kinds, if set, selects alerts of any of these kinds.
	Kinds []stuck.Kind
	// SessionID, if set, selects one session's alerts.
	SessionID string
	// Limit caps a page; <= 0 lists every match. Counting ignores it.
	Limit int
	// Cursor continues a listing after the page that answered it as NextCursor (with
	// the same filter); "" starts from the newest alert. Counting ignores it.
	Cursor string
}

// States of AlertFilter. A problem alert (every kind but recovered) is open until an
// operator acknowledges it or a later event resolves it; a recovery is neither open,
// acknowledged nor resolved.
const (
	// AlertFilterOpen: problems nobody acknowledged and no event resolved, the ones
	// that need someone.
	AlertFilterOpen = "open"
	// AlertFilterAcknowledged: problems acknowledged and not resolved.
	AlertFilterAcknowledged = "acknowledged"
	// AlertFilterResolved: alerts a later event resolved.
	AlertFilterResolved = "resolved"
	// AlertFilterAll: every alert.
	AlertFilterAll = "all"
)

// AlertPage is one page of a listing, newest first. NextCursor is "" on the last page.
type AlertPage struct {
	Items      []Alert
	NextCursor string
}

// AlertCounts is how many alerts match a filter, in all and per kind (kinds with none
// are absent).
type AlertCounts struct {
	Total  int64                `json:"total"`
	ByKind map[stuck.Kind]int64 `json:"byKind"`
}

// AlertLister lists and counts alerts for people (the API, the CLI, the History page).
type AlertLister interface {
	// ListAlerts answers one page of the alerts f selects, newest first (ties by
	// session, then kind); a bad f.State or f.Cursor is a *domain.FieldError.
	ListAlerts(ctx context.Context, f AlertFilter) (AlertPage, error)
	// CountAlerts counts the alerts f selects, ignoring f.Limit and f.Cursor: a true
	// count, not the size of a page.
	CountAlerts(ctx context.Context, f AlertFilter) (AlertCounts, error)
}

// AlertStore is the alert outbox.
type AlertStore interface {
	// InsertAlert records a decided alert as pending; domain.ErrDuplicate if one of the
	// same session and kind exists (it was decided before: never again).
	InsertAlert(ctx context.Context, a Alert) error
	// PendingAlerts lists alerts decided but not yet delivered.
	PendingAlerts(ctx context.Context, limit int) ([]Alert, error)
	// MarkSent moves a pending alert to sent.
	MarkSent(ctx context.Context, sessionID string, kind stuck.Kind) error
	// Resolve stamps ResolvedAt on the session's open problem alerts of these kinds.
	Resolve(ctx context.Context, sessionID string, kinds []stuck.Kind, at time.Time) error
	// Ack acknowledges an alert; domain.ErrNotFound if there is none.
	Ack(ctx context.Context, sessionID string, kind stuck.Kind, by string, at time.Time) error
	// SessionAlerts returns the kinds raised for a session and those still open
	// (unresolved, whether acknowledged or not: what the detector may still resolve).
	SessionAlerts(ctx context.Context, sessionID string) (raised, open stuck.KindSet, err error)
	AlertLister
}

// Quarantined is a poison input kept aside with the reason it was rejected.
type Quarantined struct {
	ID int64 `json:"id"`
	// Source is where it came from: "http", "cli", "sqs", "journal", "stream".
	Source string `json:"source"`
	// Key identifies it in its source (message id, PK/SK, position), if known.
	Key     string    `json:"key,omitempty"`
	Reason  string    `json:"reason"`
	Payload string    `json:"payload"`
	At      time.Time `json:"at"`
}

// Quarantine keeps poison inputs.
type Quarantine interface {
	Quarantine(ctx context.Context, q Quarantined) error
	ListQuarantined(ctx context.Context, limit int) ([]Quarantined, error)
	CountQuarantined(ctx context.Context) (int64, error)
}
