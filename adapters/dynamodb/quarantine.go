package dynamodb

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
)

// QuarantineStore keeps poison inputs with the reason they were rejected, in the
// quarantine table: PK "QUARANTINE", SK the id zero-padded (so a query in SK order is
// insertion order). Ids come from a counter in the control table.
type QuarantineStore struct {
	client  *dynamodb.Client
	table   string
	control string
	now     func() time.Time
}

var _ app.Quarantine = (*QuarantineStore)(nil)

// NewQuarantineStore returns the quarantine of cfg.
func NewQuarantineStore(client *dynamodb.Client, cfg Config) (*QuarantineStore, error) {
	cfg, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	t := cfg.TablesOf(1)
	return &QuarantineStore{client: client, table: t.Quarantine, control: t.Control, now: time.Now}, nil
}

const (
	pkQuarantine   = "QUARANTINE"
	counterQuarant = "quarantine"
	// maxPayload caps a stored payload: an item holds at most 400 KB.
	maxPayload = 256 << 10
)

// Quarantine stores q; its ID is assigned by the store (q.ID is ignored) and a zero At
// becomes now. A payload over 256 KiB is cut there.
func (s *QuarantineStore) Quarantine(ctx context.Context, q app.Quarantined) error {
	at := q.At
	if at.IsZero() {
		at = s.now()
	}
	e, err := expression.NewBuilder().WithUpdate(expression.Add(expression.Name(attrValue), expression.Value(1))).Build()
	if err != nil {
		return fmt.Errorf("quarantine %s %s: %w", q.Source, q.Key, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.control, Key: controlKey(pkCounter, counterQuarant),
		UpdateExpression: e.Update(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues: types.ReturnValueUpdatedNew})
	if err != nil {
		return fmt.Errorf("quarantine %s %s: next id: %w", q.Source, q.Key, edge(err))
	}
	id, ok := numberOf(out.Attributes, attrValue)
	if !ok {
		return fmt.Errorf("quarantine %s %s: next id: counter has no value", q.Source, q.Key)
	}
	payload := q.Payload
	if len(payload) > maxPayload {
		cut := maxPayload
		for cut > 0 && !utf8.RuneStart(payload[cut]) {
			cut--
		}
		payload = payload[:cut]
	}
	item := map[string]types.AttributeValue{
		attrPK: str(pkQuarantine), attrSK: str(fmt.Sprintf("%020d", id)),
		"id": num(id), "source": str(q.Source), "key": str(q.Key), "reason": str(q.Reason), "payload": str(payload),
		"at": num(at.UnixNano()),
	}
	if _, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("quarantine %s %s: %w", q.Source, q.Key, edge(err))
	}
	return nil
}

// ListQuarantined returns up to limit quarantined inputs, newest first (limit <= 0: all).
func (s *QuarantineStore) ListQuarantined(ctx context.Context, limit int) ([]app.Quarantined, error) {
	in, err := s.query()
	if err != nil {
		return nil, fmt.Errorf("list quarantined: %w", err)
	}
	in.ScanIndexForward = aws.Bool(false)
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	var out []app.Quarantined
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list quarantined: %w", edge(err))
		}
		for _, item := range page.Items {
			id, _ := numberOf(item, "id")
			at, _ := numberOf(item, "at")
			out = append(out, app.Quarantined{ID: id, Source: stringOf(item, "source"), Key: stringOf(item, "key"),
				Reason: stringOf(item, "reason"), Payload: stringOf(item, "payload"), At: time.Unix(0, at).UTC()})
			if limit > 0 && len(out) == limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// CountQuarantined counts every quarantined input (a COUNT query).
func (s *QuarantineStore) CountQuarantined(ctx context.Context) (int64, error) {
	in, err := s.query()
	if err != nil {
		return 0, fmt.Errorf("count quarantined: %w", err)
	}
	in.Select = types.SelectCount
	var n int64
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, fmt.Errorf("count quarantined: %w", edge(err))
		}
		n += int64(page.Count)
	}
	return n, nil
}

func (s *QuarantineStore) query() (*dynamodb.QueryInput, error) {
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(pkQuarantine))).Build()
	if err != nil {
		return nil, err
	}
	return &dynamodb.QueryInput{TableName: &s.table, ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}, nil
}
