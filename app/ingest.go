package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// IngestStatus is what happened to one ingested object.
type IngestStatus string

// Ingest statuses.
const (
	IngestAccepted  IngestStatus = "accepted"
	IngestDuplicate IngestStatus = "duplicate"
	IngestRejected  IngestStatus = "rejected"
)

// IngestResult reports one object of an ingest body.
type IngestResult struct {
	Index     int              `json:"index"`
	Line      int              `json:"line,omitempty"`
	Status    IngestStatus     `json:"status"`
	Reason    string           `json:"reason,omitempty"`
	Kind      domain.InputKind `json:"kind,omitempty"`
	SessionID string           `json:"sessionId,omitempty"`
	SK        string           `json:"sk,omitempty"`
}

// IngestReport answers an ingest call: one result per object, plus totals.
type IngestReport struct {
	Results   []IngestResult `json:"results"`
	Accepted  int            `json:"accepted"`
	Duplicate int            `json:"duplicate"`
	Rejected  int            `json:"rejected"`
}

// Ingester turns ingest objects — Step Functions status changes (EventBridge envelopes,
// raw or SNS-wrapped) and journal items — into journal appends. Malformed objects are
// rejected with the reason and quarantined; they never cost the other objects of a
// body their place in the journal.
type Ingester struct {
	journal    JournalAppender
	quarantine Quarantine
	resolver   domain.AgentNameResolver
	mapping    domain.MappingConfig
	logger     *slog.Logger
	metrics    *Metrics
	now        func() time.Time
	gate       *Backpressure
}

// PushBackWith makes IngestBody refuse bodies (a *BackpressureError) while gate says the
// projector is too far behind. Single objects from a queue (IngestObject) are not
// refused: their feed holds them while the handler works.
func (in *Ingester) PushBackWith(gate *Backpressure) { in.gate = gate }

// NewIngester returns an ingester. resolver may be nil (no tag lookups).
func NewIngester(journal JournalAppender, quarantine Quarantine, resolver domain.AgentNameResolver,
	mapping domain.MappingConfig, logger *slog.Logger, metrics *Metrics) *Ingester {
	mapping.SetDefaults()
	return &Ingester{journal: journal, quarantine: quarantine, resolver: resolver, mapping: mapping,
		logger: logger, metrics: metrics, now: time.Now}
}

// IngestBody ingests a body of one JSON object, a JSON array, or NDJSON. The error is
// non-nil only when the journal could not be written (nothing about the input) or the
// projector is too far behind (a *BackpressureError, before anything is read): then
// the caller may retry the whole body, since appends are idempotent.
func (in *Ingester) IngestBody(ctx context.Context, source string, body []byte) (IngestReport, error) {
	if err := in.gate.Admit(ctx); err != nil {
		return IngestReport{}, err
	}
	objs, err := domain.SplitInput(body)
	if err != nil {
		rep := IngestReport{Results: []IngestResult{{Index: 0, Status: IngestRejected, Reason: err.Error()}}, Rejected: 1}
		in.reject(ctx, source, "", string(truncate(body, 64<<10)), err.Error())
		return rep, nil
	}
	return in.ingest(ctx, source, objs)
}

// IngestObject ingests one object (a queue message, say). It returns an error wrapping
// domain.ErrInvalid for a malformed object — without quarantining it, since the caller
// owns its poison handling — and other errors for a journal failure.
func (in *Ingester) IngestObject(ctx context.Context, obj []byte) (IngestResult, error) {
	inp, err := domain.DecodeInput(obj)
	if err != nil {
		in.metrics.ingested("queue", string(IngestRejected))
		return IngestResult{Status: IngestRejected, Reason: err.Error()}, err
	}
	ev, res, err := in.toEvent(ctx, inp)
	if err != nil {
		in.metrics.ingested("queue", string(IngestRejected))
		return res, err
	}
	results, err := in.journal.Append(ctx, []domain.Event{ev})
	if err != nil {
		return res, fmt.Errorf("append %s/%s: %w", ev.PK(), ev.SK, err)
	}
	res.Status = statusOf(results[0])
	in.metrics.ingested("queue", string(res.Status))
	return res, nil
}

func (in *Ingester) ingest(ctx context.Context, source string, objs []domain.InputObject) (IngestReport, error) {
	rep := IngestReport{Results: make([]IngestResult, len(objs))}
	events := make([]domain.Event, 0, len(objs))
	where := make([]int, 0, len(objs))
	for i, o := range objs {
		r := &rep.Results[i]
		r.Index, r.Line = o.Index, o.Line
		inp, err := o.Decode()
		if err == nil {
			var ev domain.Event
			ev, *r, err = in.toEvent(ctx, inp)
			r.Index, r.Line = o.Index, o.Line
			if err == nil {
				events = append(events, ev)
				where = append(where, i)
				continue
			}
		}
		r.Status, r.Reason = IngestRejected, err.Error()
		in.reject(ctx, source, fmt.Sprintf("object %d line %d", o.Index, o.Line), string(o.Raw), err.Error())
	}
	if len(events) > 0 {
		results, err := in.journal.Append(ctx, events)
		if err != nil {
			return rep, fmt.Errorf("append %d events: %w", len(events), err)
		}
		for j, res := range results {
			rep.Results[where[j]].Status = statusOf(res)
		}
	}
	for _, r := range rep.Results {
		switch r.Status {
		case IngestAccepted:
			rep.Accepted++
		case IngestDuplicate:
			rep.Duplicate++
		default:
			rep.Rejected++
		}
		in.metrics.ingested(source, string(r.Status))
	}
	return rep, nil
}

// toEvent maps a decoded input to the journal event it appends.
func (in *Ingester) toEvent(ctx context.Context, inp domain.Input) (domain.Event, IngestResult, error) {
	res := IngestResult{Kind: inp.Kind}
	var ev domain.Event
	switch {
	case inp.StatusChange != nil:
		var err error
		ev, err = domain.MapStatusChange(ctx, *inp.StatusChange, in.resolver, in.mapping)
		if err != nil {
			return ev, res, err // says "map status change of execution ..." itself
		}
	case inp.Event != nil:
		ev = *inp.Event
	default:
		return ev, res, fmt.Errorf("%w: empty input", domain.ErrInvalid)
	}
	if !ev.Status.Known() {
		in.metrics.unknownStatus(string(ev.Status))
	}
	res.SessionID, res.SK = ev.SessionID, ev.SK
	return ev, res, nil
}

func statusOf(r AppendResult) IngestStatus {
	if r == Duplicate {
		return IngestDuplicate
	}
	return IngestAccepted
}

// reject quarantines a poison object. A quarantine failure is logged, not returned: the
// caller already answers the object as rejected with its reason.
func (in *Ingester) reject(ctx context.Context, source, key, payload, reason string) {
	in.metrics.quarantined(source)
	if in.quarantine == nil {
		return
	}
	q := Quarantined{Source: source, Key: key, Reason: reason, Payload: payload, At: in.now().UTC()}
	if err := in.quarantine.Quarantine(ctx, q); err != nil && !errors.Is(err, context.Canceled) {
		in.logger.ErrorContext(ctx, "quarantine rejected object", "source", source, "reason", reason, "error", err)
	}
}

func truncate(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
