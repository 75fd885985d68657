// Package executionindex is the execution index of seed 000: one item per Step
// Functions execution, queryable by agent and by status over a date range.
package executionindex

import (
	"math"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// Item is one execution in the index. JSON names are those of seed 000, plus sessionId,
// error, cause, redriveCount, inputIncluded, outputIncluded and lastEventAt.
type Item struct {
	ExecutionArn    string `json:"executionArn"`
	AgentName       string `json:"agentName"`
	Status          string `json:"status"`
	StartDate       string `json:"startDate"`
	StateMachineArn string `json:"stateMachineArn"`
	ExecutionName   string `json:"executionName"`
	// IndexedAt is when the index last changed the item; stamped by the writer, so it
	// is the one field that is not a function of the journal.
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
	// Rank orders the status changes of the execution (domain.Rank). Stores use it to
	// guard writes: an item is replaced only by one of equal or higher rank.
	Rank int64 `json:"-"`
}

// Unknown is the agent name of an execution whose agent could not be resolved.
const Unknown = "unknown"

// ItemOf derives the index item of one execution of session s.
func ItemOf(s *domain.Session, e *domain.ExecState) Item {
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
		Rank:            e.Rank,
	}
	if it.AgentName == "" {
		it.AgentName = Unknown
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
	for i := range s.Execs {
		out = append(out, ItemOf(s, &s.Execs[i]))
	}
	return out
}

// Changed appends to out the items of after that differ from before: what a projector
// must write when a session changes from before to after.
func Changed(before, after *domain.Session, out []Item) []Item {
	for i := range after.Execs {
		a := &after.Execs[i]
		if b := findExec(before, a.Arn); b != nil && execEqual(b, a) {
			continue
		}
		out = append(out, ItemOf(after, a))
	}
	return out
}

func findExec(s *domain.Session, arn string) *domain.ExecState {
	if s == nil {
		return nil
	}
	for i := range s.Execs {
		if s.Execs[i].Arn == arn {
			return &s.Execs[i]
		}
	}
	return nil
}

func execEqual(a, b *domain.ExecState) bool {
	x := domain.Session{Execs: []domain.ExecState{*a}}
	y := domain.Session{Execs: []domain.ExecState{*b}}
	return x.Equal(&y)
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
