package dynamodb

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// JournalStore is the session journal: the DynamoDB table that agents write with a
// plain PutItem (seed 002: PK "SESSION#{id}", SK "EVENT#{timestamp}", Status,
// Timestamp, ErrorMessage) and that agentwatch appends Step Functions status changes
// to. It reads items exactly as agents write them. Items of the table that are not
// journal items (a PK without "SESSION#" or an SK without "EVENT#", as an older
// SESSION record might be) are ignored; journal items that fail validation are logged
// and skipped by reads, since the stream feed quarantines them.
//
// It is safe for concurrent use.
type JournalStore struct {
	client *dynamodb.Client
	cfg    Config
	logger *slog.Logger
}

var (
	_ app.JournalAppender    = (*JournalStore)(nil)
	_ app.JournalReader      = (*JournalStore)(nil)
	_ app.JournalScanner     = (*JournalStore)(nil)
	_ app.ApproximateCounter = (*JournalStore)(nil)
)

// NewJournalStore returns the journal in cfg.JournalTable.
func NewJournalStore(client *dynamodb.Client, cfg Config, logger *slog.Logger) (*JournalStore, error) {
	cfg, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	return &JournalStore{client: client, cfg: cfg, logger: orDiscard(logger)}, nil
}

// Table is the journal's table name.
func (s *JournalStore) Table() string { return s.cfg.JournalTable }

// Append appends events, one conditional PutItem each (attribute_not_exists(PK): an
// existing PK+SK is reported app.Duplicate and never overwritten), up to
// WriteConcurrency at once. A repeat of a key within events is Duplicate without a
// request. Events that are not valid journal items fail the whole call with an error
// matching domain.ErrInvalid before anything is written.
//
// Why not BatchWriteItem or TransactWriteItems: a batch write cannot be conditional,
// so it would overwrite; a transaction can, but costs two write units per item,
// cancels all of a group for one duplicate (another round to find and drop it), and
// stops at 100 items. Parallel conditional puts cost one unit per item and say per
// item what happened. On an error some events may have been appended; retrying the
// call is safe.
func (s *JournalStore) Append(ctx context.Context, events []domain.Event) ([]app.AppendResult, error) {
	if len(events) == 0 {
		return nil, nil
	}
	items := make([]map[string]types.AttributeValue, len(events))
	results := make([]app.AppendResult, len(events))
	first := make(map[string]bool, len(events))
	var todo []int
	for i := range events {
		ev := &events[i]
		if err := ev.CheckJournal(); err != nil {
			return nil, fmt.Errorf("append %s/%s: %w", ev.PK(), ev.SK, err)
		}
		it := ev.Item()
		av, err := attributevalue.MarshalMapWithOptions(&it, jsonTags)
		if err != nil {
			return nil, fmt.Errorf("append %s/%s: encode item: %w", ev.PK(), ev.SK, err)
		}
		items[i] = av
		if first[ev.Key()] {
			results[i] = app.Duplicate
			continue
		}
		first[ev.Key()] = true
		todo = append(todo, i)
	}
	absent, err := conditionOf(expression.AttributeNotExists(expression.Name(attrPK)))
	if err != nil {
		return nil, err
	}
	err = forEach(ctx, len(todo), s.cfg.WriteConcurrency, func(ctx context.Context, j int) error {
		i := todo[j]
		_, err := s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.cfg.JournalTable, Item: items[i],
			ConditionExpression: absent.Condition(), ExpressionAttributeNames: absent.Names()})
		switch {
		case err == nil:
			results[i] = app.Appended
		case isConditionFailed(err):
			results[i] = app.Duplicate
		default:
			return fmt.Errorf("append %s/%s: %w", events[i].PK(), events[i].SK, edge(err))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("append %d events: %w", len(events), err)
	}
	return results, nil
}

// DecodeItem decodes a journal item as DynamoDB returns it (GetItem, Query, Scan, a
// stream's NewImage) into the event it records: through attributevalue into
// domain.JournalItem, then JournalItem.Event, which validates it. Errors match
// domain.ErrInvalid when the item is not a valid journal item.
func DecodeItem(item map[string]types.AttributeValue) (domain.Event, error) {
	var it domain.JournalItem
	if err := attributevalue.UnmarshalMapWithOptions(item, &it, jsonTagsDecode); err != nil {
		return domain.Event{}, fmt.Errorf("decode journal item %s/%s: %w: %w", stringOf(item, attrPK), stringOf(item, attrSK), domain.ErrInvalid, err)
	}
	ev, err := it.Event()
	if err != nil {
		return domain.Event{}, fmt.Errorf("journal item %s/%s: %w", it.PK, it.SK, err)
	}
	return ev, nil
}

// decodeOrSkip decodes an item of a read; an invalid one is logged and skipped.
func (s *JournalStore) decodeOrSkip(item map[string]types.AttributeValue, out []domain.Event) []domain.Event {
	ev, err := DecodeItem(item)
	if err != nil {
		s.logger.Warn("journal item skipped", "table", s.cfg.JournalTable, "error", err)
		return out
	}
	return append(out, ev)
}

// SessionEvents returns one session's events ordered by SK, filtered as q says, the
// way seed 002 queries them: a Query on PK with SK > "EVENT#"+After (or begins_with
// "EVENT#") as key condition, ScanIndexForward for the order, Status = :s or
// contains(Status, :x) as filter. DynamoDB applies Limit before filters, so the query
// pages until q.Limit events passed them. Reads are strongly consistent. An unknown
// session has no events (and no error).
func (s *JournalStore) SessionEvents(ctx context.Context, sessionID string, q app.SessionEventsQuery) ([]domain.Event, error) {
	pk := expression.Key(attrPK).Equal(expression.Value(domain.SessionKeyPrefix + sessionID))
	after := ""
	if q.After.IsZero() {
		pk = pk.And(expression.Key(attrSK).BeginsWith(domain.EventKeyPrefix))
	} else {
		// SK > "EVENT#<after>" and still an EVENT# key: BETWEEN it and the highest
		// EVENT# key, minus the lower bound itself.
		after = domain.EventKeyPrefix + domain.FormatTime(q.After)
		pk = pk.And(expression.Key(attrSK).Between(expression.Value(after), expression.Value(domain.EventKeyPrefix+"\U0010FFFF")))
	}
	b := expression.NewBuilder().WithKeyCondition(pk)
	var filters []expression.ConditionBuilder
	if q.Status != "" {
		filters = append(filters, expression.Name("Status").Equal(expression.Value(string(q.Status))))
	}
	if q.StatusContains != "" {
		filters = append(filters, expression.Name("Status").Contains(q.StatusContains))
	}
	switch len(filters) {
	case 1:
		b = b.WithFilter(filters[0])
	case 2:
		b = b.WithFilter(expression.And(filters[0], filters[1]))
	}
	e, err := b.Build()
	if err != nil {
		return nil, fmt.Errorf("session %s events: %w", sessionID, err)
	}
	in := &dynamodb.QueryInput{TableName: &s.cfg.JournalTable, ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), FilterExpression: e.Filter(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ScanIndexForward: aws.Bool(!q.Descending)}
	if q.Limit > 0 && len(filters) == 0 {
		// One page holds the answer: the limit, plus the lower bound of After that is
		// skipped. With a filter, pages are DynamoDB's (1 MB); a session is small.
		in.Limit = aws.Int32(int32(min(q.Limit+1, 1000)))
	}
	var out []domain.Event
	p := dynamodb.NewQueryPaginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("session %s events: %w", sessionID, edge(err))
		}
		for _, item := range page.Items {
			if sk := stringOf(item, attrSK); sk == after || !strings.HasPrefix(sk, domain.EventKeyPrefix) {
				continue
			}
			out = s.decodeOrSkip(item, out)
			if q.Limit > 0 && len(out) == q.Limit {
				return out, nil
			}
		}
	}
	return out, nil
}

// ApproximateCount is the journal table's item count as DynamoDB last computed it
// (DescribeTable; it refreshes about every six hours): a rebuild's progress estimate.
func (s *JournalStore) ApproximateCount(ctx context.Context) (int64, error) {
	out, err := s.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.cfg.JournalTable})
	if err != nil {
		return 0, fmt.Errorf("describe journal table: %w", edge(err))
	}
	return aws.ToInt64(out.Table.ItemCount), nil
}

// Scan calls fn with batches of every journal event (one batch per page of a segment),
// reading opts.Parallel segments (default Config.ScanSegments) in parallel with the
// SDK's paginator (consistent reads; only SESSION#/EVENT# items). fn runs on the
// calling goroutine, never concurrently with itself, and may keep the batches. Order
// across sessions is unspecified. A failing fn stops the scan with its error.
func (s *JournalStore) Scan(ctx context.Context, opts app.ScanOptions, fn func(batch []domain.Event) error) error {
	if err := opts.Check(); err != nil {
		return fmt.Errorf("scan journal: %w", err)
	}
	e, err := expression.NewBuilder().WithFilter(expression.And(
		expression.Name(attrPK).BeginsWith(domain.SessionKeyPrefix),
		expression.Name(attrSK).BeginsWith(domain.EventKeyPrefix))).Build()
	if err != nil {
		return fmt.Errorf("scan journal: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	segments := s.cfg.ScanSegments
	if opts.Parallel > 0 {
		segments = opts.Parallel
	}
	batches := make(chan []domain.Event, segments)
	readErr := make(chan error, 1)
	go func() {
		defer close(batches)
		readErr <- forEach(ctx, segments, segments, func(ctx context.Context, seg int) error {
			p := dynamodb.NewScanPaginator(s.client, &dynamodb.ScanInput{TableName: &s.cfg.JournalTable,
				Segment: aws.Int32(int32(seg)), TotalSegments: aws.Int32(int32(segments)), ConsistentRead: aws.Bool(true),
				FilterExpression: e.Filter(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
			for p.HasMorePages() {
				page, err := p.NextPage(ctx)
				if err != nil {
					return fmt.Errorf("segment %d: %w", seg, edge(err))
				}
				batch := make([]domain.Event, 0, len(page.Items))
				for _, item := range page.Items {
					batch = s.decodeOrSkip(item, batch)
				}
				if len(batch) == 0 {
					continue
				}
				select {
				case batches <- batch:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()
	var fnErr error
	for batch := range batches {
		if fnErr == nil {
			if fnErr = fn(batch); fnErr != nil {
				cancel()
			}
		}
	}
	if fnErr != nil {
		return fnErr
	}
	if err := <-readErr; err != nil {
		return fmt.Errorf("scan journal: %w", err)
	}
	return nil
}
