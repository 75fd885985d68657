// Package executionindex is the execution index of seed 000: one item per Step
// Functions execution, queryable by agent, by status and by the agent's true outcome
// over a date range, and found by name.
package executionindex

import (
	"math"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Item is one execution in the index. JSON names are those of seed 000, plus sessionId,
// error, cause, redriveCount, inputIncluded, outputIncluded, lastEventAt and the
// journal's diagnosis of the session: outcome, stage and errorMessage.
type Item struct {
	ExecutionArn    string `json:"executionArn"`
	AgentName       string `json:"agentName"`
	Status          string `json:"status"`
	StartDate       string `json:"startDate"`
	StateMachineArn string `json:"stateMachineArn"`
	ExecutionName   string `json:"executionName"`
	// IndexedAt is when the index last changed the item (the commit's time), so it is
	// the one field that is not a function of the journal.
	IndexedAt       string   `json:"indexedAt,omitempty"`
	StopDate        string   `json:"stopDate,omitempty"`
	DurationSeconds *float64 `json:"durationSeconds,omitempty"`
	SessionID       string   `json:"sessionId"`
	Error           string   `json:"error,omitempty"`
	Cause           string   `json:"cause,omitempty"`
	RedriveCount    int      `json:"redriveCount"`
	InputIncluded   *bool    `json:"inputIncluded,omitempty"`
	OutputIncluded  *bool    `json:"outputIncluded,omitempty"`
	LastEventAt     string   `json:"lastEventAt"`
	// Outcome is the journal's diagnosis of the session (domain.Outcome): a failed agent
	// is a failure even when Step Functions says SUCCEEDED.
	Outcome string `json:"outcome"`
	// Stage is the stage that failed, or the stage in progress ("done" once over).
	Stage string `json:"stage,omitempty"`
	// ErrorMessage is the agent's failure message, cut at MaxErrorMessage bytes.
	ErrorMessage          string `json:"errorMessage,omitempty"`
	ErrorMessageTruncated bool   `json:"errorMessageTruncated,omitempty"`
	// Rank orders the status changes of the execution (domain.Rank): the write guard.
	Rank int64 `json:"-"`
}

// Unknown is the agent name of an execution whose agent could not be resolved.
const Unknown = "unknown"

// MaxErrorMessage bounds the errorMessage an item carries; the journal keeps all of it.
const MaxErrorMessage = 4 << 10

// ItemOf derives the index item of one execution of session s (IndexedAt left empty).
func ItemOf(s *domain.Session, e *domain.ExecState) Item {
	d := s.Classify()
	return itemOf(s, e, &d)
}

func itemOf(s *domain.Session, e *domain.ExecState, d *domain.Diagnosis) Item {
	it := Item{
		ExecutionArn:    e.Arn,
		AgentName:       e.AgentName,
		Status:          string(e.Status),
		StartDate:       msTime(e.StartMs),
		StateMachineArn: e.StateMachineArn,
		ExecutionName:   e.Name,
		SessionID:       s.ID,
		Error:           e.Error,
		Cause:           e.Cause,
		RedriveCount:    e.RedriveCount,
		InputIncluded:   e.InputIncl,
		OutputIncluded:  e.OutputIncl,
		LastEventAt:     msTime(e.LastMs),
		Outcome:         string(d.Outcome),
		Stage:           string(d.Stage),
		Rank:            e.Rank,
	}
	if it.AgentName == "" {
		it.AgentName = Unknown
	}
	if d.Outcome.Failed() && d.Outcome != domain.OutcomeMissingCompletion {
		var cut bool
		it.ErrorMessage, cut = domain.Truncate(d.ErrorMessage, MaxErrorMessage)
		// The session keeps messages cut already (domain.MaxSessionErrorBytes), marked.
		it.ErrorMessageTruncated = cut || domain.IsTruncated(it.ErrorMessage)
	}
	if e.Status.Terminal() && e.StopMs != 0 {
		it.StopDate = msTime(e.StopMs)
		if e.StartMs != 0 {
			d := math.Round(float64(e.StopMs-e.StartMs)) / 1000
			it.DurationSeconds = &d
		}
	}
	return it
}

// ItemsOf appends the index items of every execution of s to out.
func ItemsOf(s *domain.Session, out []Item) []Item {
	d := s.Classify()
	for i := range s.Execs {
		out = append(out, itemOf(s, &s.Execs[i], &d))
	}
	return out
}

func msTime(ms int64) string {
	if ms == 0 {
		return ""
	}
	return domain.FormatTime(time.UnixMilli(ms))
}

// Equal compares two items, ignoring IndexedAt (the write time).
func Equal(a, b Item) bool {
	a.IndexedAt, b.IndexedAt = "", ""
	if !floatPtrEq(a.DurationSeconds, b.DurationSeconds) || !boolPtrEq(a.InputIncluded, b.InputIncluded) ||
		!boolPtrEq(a.OutputIncluded, b.OutputIncluded) {
		return false
	}
	a.DurationSeconds, b.DurationSeconds = nil, nil
	a.InputIncluded, b.InputIncluded, a.OutputIncluded, b.OutputIncluded = nil, nil, nil, nil
	return a == b
}

func floatPtrEq(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func boolPtrEq(a, b *bool) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Table is the execution index's table: seed 000's, keyed by executionArn, with its
// AgentDateIndex and StatusDateIndex, and OutcomeDateIndex and NameDateIndex beside.
const Table = "executions"

// Index names.
const (
	AgentDateIndex   = "AgentDateIndex"
	StatusDateIndex  = "StatusDateIndex"
	OutcomeDateIndex = "OutcomeDateIndex"
	NameDateIndex    = "NameDateIndex"
)

// Projection is the execution index as a read model.
type Projection struct{}

var _ projections.ReadModel = Projection{}

// New returns the execution index read model.
func New() Projection { return Projection{} }

// Name is "executionindex".
func (Projection) Name() string { return "executionindex" }

// Version 2 added the outcome, stage and errorMessage of the session's diagnosis.
func (Projection) Version() int { return 2 }

func itemAttr(name string, f func(*Item) string) projections.Attr {
	return projections.Attr{Name: name, Type: projections.String, Of: func(d any) any { return f(d.(*Item)) }}
}

// Tables declares the index.
func (Projection) Tables() []projections.Table {
	return []projections.Table{{
		Name: Table, Kind: projections.Documents, Key: "executionArn",
		Attrs: []projections.Attr{
			itemAttr("agentName", func(it *Item) string { return it.AgentName }),
			itemAttr("status", func(it *Item) string { return it.Status }),
			itemAttr("startDate", func(it *Item) string { return it.StartDate }),
			itemAttr("outcome", func(it *Item) string { return it.Outcome }),
			itemAttr("executionName", func(it *Item) string { return it.ExecutionName }),
		},
		Indexes: []projections.Index{
			{Name: AgentDateIndex, Partition: "agentName", Sort: "startDate"},
			{Name: StatusDateIndex, Partition: "status", Sort: "startDate"},
			{Name: OutcomeDateIndex, Partition: "outcome", Sort: "startDate"},
			{Name: NameDateIndex, Partition: "executionName", Sort: "startDate"},
		},
		Guard:   "rank",
		Expires: true,
		New:     func() any { return new(Item) },
		Codec:   itemCodec{},
	}}
}

// Changes puts every item of after that differs from before's (an execution's status
// change, or a change of the session's diagnosis), guarded by the execution's rank.
func (Projection) Changes(before, after *domain.Session, env projections.Env, out *projections.Changes) {
	if len(after.Execs) == 0 {
		return
	}
	db, da := before.Classify(), after.Classify()
	indexedAt := domain.FormatTime(time.UnixMilli(env.NowMs))
	for i := range after.Execs {
		a := &after.Execs[i]
		it := itemOf(after, a, &da)
		if b := findExec(before, a.Arn); b != nil && Equal(itemOf(before, b, &db), it) {
			continue
		}
		it.IndexedAt = indexedAt
		out.Puts = append(out.Puts, projections.Put{Table: Table, Key: it.ExecutionArn, Doc: &it, Guard: it.Rank})
	}
}

func findExec(s *domain.Session, arn string) *domain.ExecState {
	for i := range s.Execs {
		if s.Execs[i].Arn == arn {
			return &s.Execs[i]
		}
	}
	return nil
}
