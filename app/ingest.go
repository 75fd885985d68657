package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
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

// Objects is how many objects the report counts.
func (r *IngestReport) Objects() int { return r.Accepted + r.Duplicate + r.Rejected }

// count adds one result to the totals: the one tally of accepted, duplicate and
// rejected objects, whoever ingests.
func (r *IngestReport) count(s IngestStatus) {
	switch s {
	case IngestAccepted:
		r.Accepted++
	case IngestDuplicate:
		r.Duplicate++
	default:
		r.Rejected++
	}
}

// Append adds the report of a later part of the same input (a chunk of a long NDJSON
// file) to r: the part's indexes are shifted past r's objects (its lines are the
// input's already: see domain.SplitNDJSON), and its totals added. keep, when not nil,
// chooses the results r keeps (its totals count them all).
func (r *IngestReport) Append(part IngestReport, keep func(IngestResult) bool) {
	offset := r.Objects()
	for _, res := range part.Results {
		res.Index += offset
		if keep == nil || keep(res) {
			r.Results = append(r.Results, res)
		}
	}
	r.Accepted += part.Accepted
	r.Duplicate += part.Duplicate
	r.Rejected += part.Rejected
}

// reasonOf is the reason an object is rejected for: the error, without the "object N
// (line L)" that the result says on its own.
func reasonOf(err error) string {
	if ie, ok := errors.AsType[*domain.InputError](err); ok {
		return ie.Reason()
	}
	return err.Error()
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

// IngestBody ingests a body of one JSON object, a JSON array, or NDJSON
// (domain.SplitInput tells which). The error is non-nil only when the journal could
// not be written (nothing about the input) or the projector is too far behind (a
// *BackpressureError, before anything is read): then the caller may retry the whole
// body, since appends are idempotent.
func (in *Ingester) IngestBody(ctx context.Context, source string, body []byte) (IngestReport, error) {
	return in.ingestSplit(ctx, source, body, func() ([]domain.InputObject, error) { return domain.SplitInput(body) })
}

// IngestNDJSON ingests a body declared NDJSON, each line on its own
// (domain.SplitNDJSON); firstLine is the body's first line in the whole input. Errors
// are IngestBody's.
func (in *Ingester) IngestNDJSON(ctx context.Context, source string, body []byte, firstLine int) (IngestReport, error) {
	return in.ingestSplit(ctx, source, body, func() ([]domain.InputObject, error) { return domain.SplitNDJSON(body, firstLine) })
}

// ingestSplit splits body with split and ingests its objects. A body that holds no
// object at all is one rejected object. A panic while splitting rejects the body as a
// whole, since there are no objects to keep apart.
func (in *Ingester) ingestSplit(ctx context.Context, source string, body []byte, split func() ([]domain.InputObject, error)) (IngestReport, error) {
	if err := in.gate.Admit(ctx); err != nil {
		return IngestReport{}, err
	}
	objs, err := func() (objs []domain.InputObject, err error) {
		defer func() {
			if v := recover(); v != nil {
				objs, err = nil, in.panicked(ctx, source, "body", v)
			}
		}()
		return split()
	}()
	if err != nil {
		var rep IngestReport
		rep.Results = []IngestResult{{Index: 0, Line: 1, Status: IngestRejected, Reason: err.Error()}}
		rep.count(IngestRejected)
		in.reject(ctx, source, "", string(truncate(body, 64<<10)), err.Error())
		in.metrics.ingested(source, string(IngestRejected))
		return rep, nil
	}
	return in.IngestObjects(ctx, source, objs)
}

// IngestObject ingests one object (a queue message, say). It returns an error wrapping
// domain.ErrInvalid for a malformed object — without quarantining it, since the caller
// owns its poison handling — and other errors for a journal failure. A panic while
// decoding or mapping the object is such an ErrInvalid error (retrying cannot help).
func (in *Ingester) IngestObject(ctx context.Context, obj []byte) (IngestResult, error) {
	ev, res, err := in.prepareObject(ctx, obj)
	if err != nil {
		in.metrics.ingested(SourceQueue, string(IngestRejected))
		return res, err
	}
	results, err := in.journal.Append(ctx, []domain.Event{ev})
	if err != nil {
		return res, fmt.Errorf("append %s/%s: %w", ev.PK(), ev.SK, err)
	}
	res.Status = statusOf(results[0])
	in.metrics.ingested(SourceQueue, string(res.Status))
	return res, nil
}

// prepareObject decodes and maps a queue object, turning a panic into an error.
func (in *Ingester) prepareObject(ctx context.Context, obj []byte) (ev domain.Event, res IngestResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			res.Status = IngestRejected
			err = in.panicked(ctx, SourceQueue, "queue object", v)
			res.Reason = err.Error()
		}
	}()
	inp, err := domain.DecodeInput(obj)
	if err != nil {
		return ev, IngestResult{Status: IngestRejected, Reason: err.Error()}, err
	}
	return in.toEvent(ctx, SourceQueue, inp)
}

// ErrIngestPanic marks an object that made agentwatch panic while it was ingested: a
// bug of agentwatch, not of the object, but the object is rejected (and quarantined)
// all the same so that it cannot cost the other objects their place. It matches
// domain.ErrInvalid, since ingesting the object again would panic again.
var ErrIngestPanic = fmt.Errorf("%w: internal error while ingesting this object", domain.ErrInvalid)

// panicked logs a recovered panic with its stack and returns the error that rejects
// the object it happened on.
func (in *Ingester) panicked(ctx context.Context, source, what string, v any) error {
	in.logger.ErrorContext(ctx, "ingest panicked; the object is rejected and the others are kept",
		"source", source, "object", what, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
	return fmt.Errorf("%w (it was rejected, the other objects were kept; the log has the details)", ErrIngestPanic)
}

// IngestObjects ingests the objects of a body that the caller split (with
// domain.SplitInput or SplitNDJSON): one result per object, in order, each accepted,
// a duplicate or rejected with its reason (and quarantined). Errors are IngestBody's.
func (in *Ingester) IngestObjects(ctx context.Context, source string, objs []domain.InputObject) (IngestReport, error) {
	rep := IngestReport{Results: make([]IngestResult, len(objs))}
	events := make([]domain.Event, 0, len(objs))
	where := make([]int, 0, len(objs))
	for i, o := range objs {
		ev, res, err := in.prepare(ctx, source, o)
		res.Index, res.Line = o.Index, o.Line
		rep.Results[i] = res
		if err == nil {
			events = append(events, ev)
			where = append(where, i)
			continue
		}
		rep.Results[i].Status, rep.Results[i].Reason = IngestRejected, reasonOf(err)
		in.reject(ctx, source, objectKey(o), string(o.Raw), rep.Results[i].Reason)
	}
	if len(events) > 0 {
		results, err := in.appendIsolated(ctx, source, events)
		if err != nil {
			return rep, fmt.Errorf("append %d events: %w", len(events), err)
		}
		for j, res := range results {
			r := &rep.Results[where[j]]
			r.Status = res.status
			if res.err != nil {
				r.Reason = res.err.Error()
				in.reject(ctx, source, objectKey(objs[where[j]]), string(objs[where[j]].Raw), r.Reason)
			}
		}
	}
	for _, r := range rep.Results {
		rep.count(r.Status)
		in.metrics.ingested(source, string(r.Status))
	}
	return rep, nil
}

// objectKey names an object of a body in the quarantine.
func objectKey(o domain.InputObject) string {
	return fmt.Sprintf("object %d line %d", o.Index, o.Line)
}

// prepare decodes and maps one object of a body. A panic on the way rejects only that
// object.
func (in *Ingester) prepare(ctx context.Context, source string, o domain.InputObject) (ev domain.Event, res IngestResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			res = IngestResult{}
			err = in.panicked(ctx, source, objectKey(o), v)
		}
	}()
	inp, err := o.Decode()
	if err != nil {
		return ev, res, err
	}
	return in.toEvent(ctx, source, inp)
}

// appendOutcome is what appending one event came to.
type appendOutcome struct {
	status IngestStatus
	err    error
}

// appendIsolated appends events in one call. Should the journal panic on the batch,
// each event is appended on its own so that the one that panics is rejected and the
// others are kept. The error is a journal failure (the caller may retry the body).
func (in *Ingester) appendIsolated(ctx context.Context, source string, events []domain.Event) ([]appendOutcome, error) {
	results, panicked, err := in.appendRecovering(ctx, source, events)
	out := make([]appendOutcome, len(events))
	if !panicked {
		if err != nil {
			return nil, err
		}
		for i, r := range results {
			out[i] = appendOutcome{status: statusOf(r)}
		}
		return out, nil
	}
	for i := range events {
		results, panicked, err := in.appendRecovering(ctx, source, events[i:i+1])
		switch {
		case panicked:
			out[i] = appendOutcome{status: IngestRejected, err: err}
		case err != nil:
			return nil, err
		default:
			out[i] = appendOutcome{status: statusOf(results[0])}
		}
	}
	return out, nil
}

// appendRecovering appends events, turning a panic of the journal into panicked (and
// the error that rejects the object).
func (in *Ingester) appendRecovering(ctx context.Context, source string, events []domain.Event) (results []AppendResult, panicked bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			what := fmt.Sprintf("append of %d events", len(events))
			if len(events) == 1 {
				what = "append of " + events[0].PK() + "/" + events[0].SK
			}
			results, panicked, err = nil, true, in.panicked(ctx, source, what, v)
		}
	}()
	results, err = in.journal.Append(ctx, events)
	if err == nil && len(results) != len(events) {
		err = fmt.Errorf("journal answered %d results for %d events", len(results), len(events))
	}
	return results, false, err
}

// toEvent maps a decoded input to the journal event it appends, refusing fields over
// their caps (domain.MaxTextFieldBytes and the others): what agentwatch takes in is
// bounded, while items agents write to the journal directly are kept as they are.
func (in *Ingester) toEvent(ctx context.Context, source string, inp domain.Input) (domain.Event, IngestResult, error) {
	res := IngestResult{Kind: inp.Kind}
	var ev domain.Event
	switch {
	case inp.StatusChange != nil:
		prefix := ""
		if inp.Kind == domain.InputSNS {
			prefix = "Message."
		}
		if err := inp.StatusChange.CheckIngestCaps(prefix); err != nil {
			return ev, res, err
		}
		var err error
		ev, err = domain.MapStatusChange(ctx, *inp.StatusChange, in.resolver, in.mapping)
		if err != nil {
			return ev, res, err // says "map status change of execution ..." itself
		}
		if n := len(ev.Exec.AgentName); n > domain.MaxNameBytes {
			return ev, res, &domain.FieldError{Field: prefix + "detail.input",
				Reason: fmt.Sprintf("names an agent of %d bytes, over its cap of %d bytes for ingested objects", n, domain.MaxNameBytes)}
		}
	case inp.Event != nil:
		ev = *inp.Event
		prefix := ""
		if inp.Kind == domain.InputStreamRecord {
			prefix = "dynamodb.NewImage."
		}
		if err := ev.CheckIngestCaps(prefix); err != nil {
			return ev, res, err
		}
	default:
		return ev, res, fmt.Errorf("%w: empty input", domain.ErrInvalid)
	}
	in.metrics.UnknownStatus(source, ev.Status)
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
