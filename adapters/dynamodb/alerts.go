package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// AlertStore is the alert outbox: one item per session and kind, ever (the table's key
// sessionId + kind, written with attribute_not_exists), pending until a sink delivered
// it, then sent. A pending alert carries pending = "PENDING", which puts it in the
// sparse PendingIndex; every alert carries alertList = "ALERT" for RaisedIndex, the
// newest-first listing. A problem alert (every kind but recovered) is open until a
// later event resolves it; acknowledging it does not close it.
//
// The item holds the app.Alert under its JSON names (times as RFC 3339 strings), plus
// raisedAtNs for the indexes.
type AlertStore struct {
	client *dynamodb.Client
	table  string
	logger *slog.Logger
	now    func() time.Time
}

var _ app.AlertStore = (*AlertStore)(nil)

// NewAlertStore returns the alert outbox of cfg.
func NewAlertStore(client *dynamodb.Client, cfg Config, logger *slog.Logger) (*AlertStore, error) {
	cfg, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &AlertStore{client: client, table: cfg.TablesOf(1).Alerts, logger: orDiscard(logger), now: time.Now}, nil
}

const (
	pendingMark   = "PENDING"
	alertListMark = "ALERT"
	attrState     = "state"
	attrAttempts  = "attempts"
	attrResolved  = "resolvedAt"
	attrAckedAt   = "ackedAt"
	attrAckedBy   = "ackedBy"
)

func alertKey(sessionID string, kind stuck.Kind) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrSessionID: str(sessionID), attrKind: str(string(kind))}
}

// InsertAlert records a as pending. domain.ErrDuplicate (wrapped) when an alert of the
// same session and kind exists. A zero RaisedAt becomes now.
func (s *AlertStore) InsertAlert(ctx context.Context, a app.Alert) error {
	if a.RaisedAt.IsZero() {
		a.RaisedAt = s.now()
	}
	a.State, a.Attempts = app.AlertPending, 0
	utcAlert(&a)
	item, err := attributevalue.MarshalMapWithOptions(&a, jsonTags)
	if err != nil {
		return fmt.Errorf("insert alert %s/%s: encode: %w", a.SessionID, a.Kind, err)
	}
	item[attrPending] = str(pendingMark)
	item[attrAlertList] = str(alertListMark)
	item[attrRaisedAtNs] = num(a.RaisedAt.UnixNano())
	e, err := conditionOf(expression.AttributeNotExists(expression.Name(attrSessionID)))
	if err != nil {
		return fmt.Errorf("insert alert %s/%s: %w", a.SessionID, a.Kind, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item,
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names()})
	if isConditionFailed(err) {
		return fmt.Errorf("insert alert %s/%s: %w", a.SessionID, a.Kind, domain.ErrDuplicate)
	}
	if err != nil {
		return fmt.Errorf("insert alert %s/%s: %w", a.SessionID, a.Kind, edge(err))
	}
	return nil
}

// utcAlert stores times in UTC.
func utcAlert(a *app.Alert) {
	a.RaisedAt, a.LastEventAt = a.RaisedAt.UTC(), a.LastEventAt.UTC()
	if a.ResolvedAt != nil {
		t := a.ResolvedAt.UTC()
		a.ResolvedAt = &t
	}
	if a.AckedAt != nil {
		t := a.AckedAt.UTC()
		a.AckedAt = &t
	}
}

func decodeAlert(item map[string]types.AttributeValue) (app.Alert, int64, error) {
	var a app.Alert
	if err := attributevalue.UnmarshalMapWithOptions(item, &a, jsonTagsDecode); err != nil {
		return a, 0, fmt.Errorf("decode stored alert %s/%s: %w", stringOf(item, attrSessionID), stringOf(item, attrKind), err)
	}
	ns, _ := numberOf(item, attrRaisedAtNs)
	return a, ns, nil
}

// listedAlert is an alert with its sort key.
type listedAlert struct {
	a  app.Alert
	ns int64
}

// sortAlerts orders by raisedAt (ascending or newest first), then session and kind.
func sortAlerts(as []listedAlert, newestFirst bool) {
	sort.Slice(as, func(i, j int) bool {
		x, y := as[i], as[j]
		if x.ns != y.ns {
			return (x.ns < y.ns) != newestFirst
		}
		if x.a.SessionID != y.a.SessionID {
			return x.a.SessionID < y.a.SessionID
		}
		return x.a.Kind < y.a.Kind
	})
}

// collect runs a query in raisedAtNs order and returns up to limit alerts (limit <= 0:
// all) in the order of sortAlerts, and whether keep accepts more after them. Items
// sharing the raisedAtNs of the one after the limit are all read first, since an index
// returns them in no order.
func (s *AlertStore) collect(ctx context.Context, in *dynamodb.QueryInput, limit int, newestFirst bool, keep func(*app.Alert, int64) bool) ([]app.Alert, bool, error) {
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit+1, 1000)))
	}
	var got []listedAlert
	var boundary int64
	p := dynamodb.NewQueryPaginator(s.client, in)
pages:
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, false, edge(err)
		}
		for _, item := range page.Items {
			a, ns, err := decodeAlert(item)
			if err != nil {
				return nil, false, err
			}
			if keep != nil && !keep(&a, ns) {
				continue
			}
			if limit > 0 && len(got) > limit && ns != boundary {
				break pages
			}
			got = append(got, listedAlert{a: a, ns: ns})
			if len(got) == limit+1 {
				boundary = ns
			}
		}
	}
	sortAlerts(got, newestFirst)
	more := limit > 0 && len(got) > limit
	if more {
		got = got[:limit]
	}
	out := make([]app.Alert, len(got))
	for i := range got {
		out[i] = got[i].a
	}
	return out, more, nil
}

// PendingAlerts lists up to limit alerts not yet delivered, oldest first (limit <= 0:
// all), from PendingIndex (eventually consistent: an alert inserted a moment ago may
// show on the next call).
func (s *AlertStore) PendingAlerts(ctx context.Context, limit int) ([]app.Alert, error) {
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrPending).Equal(expression.Value(pendingMark))).Build()
	if err != nil {
		return nil, fmt.Errorf("pending alerts: %w", err)
	}
	out, _, err := s.collect(ctx, &dynamodb.QueryInput{TableName: &s.table, IndexName: aws.String(indexPending),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(true)}, limit, false, nil)
	if err != nil {
		return nil, fmt.Errorf("pending alerts: %w", err)
	}
	return out, nil
}

// exists reports whether the alert is stored (a consistent read).
func (s *AlertStore) exists(ctx context.Context, sessionID string, kind stuck.Kind) (bool, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: alertKey(sessionID, kind),
		ConsistentRead: aws.Bool(true), ProjectionExpression: aws.String(attrSessionID)})
	if err != nil {
		return false, edge(err)
	}
	return out.Item != nil, nil
}

// updateAlert runs a conditional update of one alert. When the condition fails, it is
// nil if the alert exists (the update had been done) and domain.ErrNotFound if not.
func (s *AlertStore) updateAlert(ctx context.Context, sessionID string, kind stuck.Kind, upd expression.UpdateBuilder, cond expression.ConditionBuilder) error {
	e, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return err
	}
	_, err = s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.table, Key: alertKey(sessionID, kind),
		UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	if !isConditionFailed(err) {
		return edge(err)
	}
	ok, err := s.exists(ctx, sessionID, kind)
	if err != nil {
		return err
	}
	if !ok {
		return domain.ErrNotFound
	}
	return nil
}

// MarkSent moves a pending alert to sent and counts the delivery. Marking a sent alert
// again does nothing; domain.ErrNotFound when there is no such alert.
func (s *AlertStore) MarkSent(ctx context.Context, sessionID string, kind stuck.Kind) error {
	upd := expression.Set(expression.Name(attrState), expression.Value(string(app.AlertSent))).
		Add(expression.Name(attrAttempts), expression.Value(1)).
		Remove(expression.Name(attrPending))
	cond := expression.Name(attrState).Equal(expression.Value(string(app.AlertPending)))
	if err := s.updateAlert(ctx, sessionID, kind, upd, cond); err != nil {
		return fmt.Errorf("mark alert %s/%s sent: %w", sessionID, kind, err)
	}
	return nil
}

// Resolve stamps at as ResolvedAt on the session's unresolved alerts of these kinds
// (one conditional update per kind; kinds never raised are skipped).
func (s *AlertStore) Resolve(ctx context.Context, sessionID string, kinds []stuck.Kind, at time.Time) error {
	for _, k := range kinds {
		upd := expression.Set(expression.Name(attrResolved), expression.Value(at.UTC()))
		cond := expression.AttributeExists(expression.Name(attrSessionID)).And(expression.AttributeNotExists(expression.Name(attrResolved)))
		if err := s.updateAlert(ctx, sessionID, k, upd, cond); err != nil && !errors.Is(err, domain.ErrNotFound) {
			return fmt.Errorf("resolve alerts of %s: %s: %w", sessionID, k, err)
		}
	}
	return nil
}

// Ack records that by acknowledged the alert at at; the first acknowledgement stays.
// domain.ErrNotFound when there is no such alert.
func (s *AlertStore) Ack(ctx context.Context, sessionID string, kind stuck.Kind, by string, at time.Time) error {
	upd := expression.Set(expression.Name(attrAckedAt), expression.Value(at.UTC())).
		Set(expression.Name(attrAckedBy), expression.Value(by))
	cond := expression.AttributeExists(expression.Name(attrSessionID)).And(expression.AttributeNotExists(expression.Name(attrAckedAt)))
	if err := s.updateAlert(ctx, sessionID, kind, upd, cond); err != nil {
		return fmt.Errorf("ack alert %s/%s: %w", sessionID, kind, err)
	}
	return nil
}

// sessionQuery selects one session's alerts (consistent reads), with an optional
// filter and projection.
func (s *AlertStore) sessionQuery(sessionID string, filter *expression.ConditionBuilder, projection *expression.ProjectionBuilder) (*dynamodb.QueryInput, error) {
	b := expression.NewBuilder().WithKeyCondition(expression.Key(attrSessionID).Equal(expression.Value(sessionID)))
	if filter != nil {
		b = b.WithFilter(*filter)
	}
	if projection != nil {
		b = b.WithProjection(*projection)
	}
	e, err := b.Build()
	if err != nil {
		return nil, err
	}
	return &dynamodb.QueryInput{TableName: &s.table, ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(), ProjectionExpression: e.Projection(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}, nil
}

// isOpen reports whether an alert is an unresolved problem.
func isOpen(a *app.Alert) bool { return a.ResolvedAt == nil && a.Kind != stuck.KindRecovered }

// SessionAlerts returns the kinds raised for the session and, among them, the problems
// still open (not resolved; recovered is never open).
func (s *AlertStore) SessionAlerts(ctx context.Context, sessionID string) (raised, open stuck.KindSet, err error) {
	in, err := s.sessionQuery(sessionID, nil, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("alerts of %s: %w", sessionID, err)
	}
	as, _, err := s.collect(ctx, in, 0, false, nil)
	if err != nil {
		return 0, 0, fmt.Errorf("alerts of %s: %w", sessionID, err)
	}
	for i := range as {
		raised |= as[i].Kind.Bit()
		if isOpen(&as[i]) {
			open |= as[i].Kind.Bit()
		}
	}
	return raised, open, nil
}

// stateFilter is the filter expression of an app.AlertFilter state, nil for all. The
// kind is tested in Go (AlertFilter.Selects): it is a key attribute of the table, which
// filters may not name.
func stateFilter(state string) *expression.ConditionBuilder {
	unresolved := expression.AttributeNotExists(expression.Name(attrResolved))
	var c expression.ConditionBuilder
	switch state {
	case app.AlertFilterOpen:
		c = unresolved.And(expression.AttributeNotExists(expression.Name(attrAckedAt)))
	case app.AlertFilterAcknowledged:
		c = unresolved.And(expression.AttributeExists(expression.Name(attrAckedAt)))
	case app.AlertFilterResolved:
		c = expression.AttributeExists(expression.Name(attrResolved))
	default:
		return nil
	}
	return &c
}

// listQuery is the query of f's alerts: one session's on the table (consistent reads),
// all on RaisedIndex newest first (eventually consistent), from the cursor's time on.
func (s *AlertStore) listQuery(f *app.AlertFilter, cursor *app.AlertCursor, projection *expression.ProjectionBuilder) (*dynamodb.QueryInput, error) {
	filter := stateFilter(f.State)
	if f.SessionID != "" {
		return s.sessionQuery(f.SessionID, filter, projection)
	}
	key := expression.Key(attrAlertList).Equal(expression.Value(alertListMark))
	if cursor != nil {
		key = key.And(expression.Key(attrRaisedAtNs).LessThanEqual(expression.Value(cursor.RaisedAtNs)))
	}
	b := expression.NewBuilder().WithKeyCondition(key)
	if filter != nil {
		b = b.WithFilter(*filter)
	}
	if projection != nil {
		b = b.WithProjection(*projection)
	}
	e, err := b.Build()
	if err != nil {
		return nil, err
	}
	return &dynamodb.QueryInput{TableName: &s.table, IndexName: aws.String(indexRaised),
		KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(), ProjectionExpression: e.Projection(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(), ScanIndexForward: aws.Bool(false)}, nil
}

// ListAlerts answers one page of the alerts f selects, newest first (ties by session,
// then kind). f.Limit <= 0 lists all. One session's alerts are a query on the table;
// all alerts a query on RaisedIndex (eventually consistent) that starts at the
// cursor's time.
func (s *AlertStore) ListAlerts(ctx context.Context, f app.AlertFilter) (app.AlertPage, error) {
	if err := f.Validate(); err != nil {
		return app.AlertPage{}, fmt.Errorf("list alerts: %w", err)
	}
	var cursor *app.AlertCursor
	if f.Cursor != "" {
		c, _ := app.DecodeAlertCursor(f.Cursor) // Validate checked it
		cursor = &c
	}
	keep := func(a *app.Alert, ns int64) bool {
		return f.Selects(a) && (cursor == nil || !cursor.Before(ns, a.SessionID, a.Kind))
	}
	in, err := s.listQuery(&f, cursor, nil)
	if err != nil {
		return app.AlertPage{}, fmt.Errorf("list alerts: %w", err)
	}
	var as []app.Alert
	var more bool
	if f.SessionID != "" {
		// The table orders a session's alerts by kind: read them all, then page.
		as, _, err = s.collect(ctx, in, 0, true, keep)
		if err == nil && f.Limit > 0 && len(as) > f.Limit {
			as, more = as[:f.Limit], true
		}
	} else {
		as, more, err = s.collect(ctx, in, f.Limit, true, keep)
	}
	if err != nil {
		return app.AlertPage{}, fmt.Errorf("list alerts: %w", err)
	}
	page := app.AlertPage{Items: as}
	if more {
		page.NextCursor = app.CursorAfter(&as[len(as)-1]).Encode()
	}
	if page.Items == nil {
		page.Items = []app.Alert{}
	}
	return page, nil
}

// CountAlerts counts the alerts f selects, per kind. It reads the matching items (only
// the attributes the count needs): alerts are few, one per session and kind, ever.
func (s *AlertStore) CountAlerts(ctx context.Context, f app.AlertFilter) (app.AlertCounts, error) {
	f.Cursor = ""
	if err := f.Validate(); err != nil {
		return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	proj := expression.NamesList(expression.Name(attrSessionID), expression.Name(attrKind),
		expression.Name(attrResolved), expression.Name(attrAckedAt))
	in, err := s.listQuery(&f, nil, &proj)
	if err != nil {
		return app.AlertCounts{}, fmt.Errorf("count alerts: %w", err)
	}
	out := app.AlertCounts{ByKind: map[stuck.Kind]int64{}}
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return app.AlertCounts{}, fmt.Errorf("count alerts: %w", edge(err))
		}
		for _, item := range page.Items {
			var a app.Alert
			if err := attributevalue.UnmarshalMapWithOptions(item, &a, jsonTagsDecode); err != nil {
				return app.AlertCounts{}, fmt.Errorf("count alerts: decode %s/%s: %w", stringOf(item, attrSessionID), stringOf(item, attrKind), err)
			}
			if f.Selects(&a) {
				out.ByKind[a.Kind]++
				out.Total++
			}
		}
	}
	return out, nil
}
