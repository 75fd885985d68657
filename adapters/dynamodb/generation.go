package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// CurrentGeneration returns the generation that serves reads and the signature of the
// read models it was built for (consistent reads of the control table);
// domain.ErrNotFound (wrapped) when none is recorded.
func (s *ReadModelStore) CurrentGeneration(ctx context.Context) (int, string, error) {
	control := s.cfg.TablesOf(1).Control
	gen, err := readCurrentGeneration(ctx, s.client, control)
	if err != nil {
		return 0, "", fmt.Errorf("current generation: %w", err)
	}
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &control, Key: controlKey(pkGeneration, generationSK(gen)),
		ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, "", fmt.Errorf("current generation: %w", edge(err))
	}
	return gen, stringOf(out.Item, attrSignature), nil
}

// Generations lists the generations that exist, in order.
func (s *ReadModelStore) Generations(ctx context.Context) ([]int, error) {
	control := s.cfg.TablesOf(1).Control
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(attrPK).Equal(expression.Value(pkGeneration)).
		And(expression.Key(attrSK).BeginsWith("GEN#"))).Build()
	if err != nil {
		return nil, fmt.Errorf("list generations: %w", err)
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{TableName: &control, ConsistentRead: aws.Bool(true),
		KeyConditionExpression: e.KeyCondition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	var out []int
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list generations: %w", edge(err))
		}
		for _, item := range page.Items {
			if g, ok := numberOf(item, attrGen); ok {
				out = append(out, int(g))
			}
		}
	}
	return out, nil
}

// CreateGeneration creates the (empty) tables of generation gen (>= 1) for the
// registered read models — the missing ones, when it exists — and records it with
// signature (set once, when first recorded), waiting until the tables are active.
func (s *ReadModelStore) CreateGeneration(ctx context.Context, gen int, signature string) error {
	if gen < 1 {
		return fmt.Errorf("create generation %d: generations start at 1", gen)
	}
	m := &migrator{client: s.client, logger: s.logger}
	for _, spec := range generationSpecs(&s.cfg, s.reg, gen) {
		if err := m.ensureTable(ctx, spec); err != nil {
			return fmt.Errorf("create generation %d: %w", gen, err)
		}
	}
	control := s.cfg.TablesOf(1).Control
	record := controlKey(pkGeneration, generationSK(gen))
	record[attrGen], record[attrCreatedAt] = num(int64(gen)), num(time.Now().UnixMilli())
	record[attrSignature] = str(signature)
	e, err := conditionOf(expression.AttributeNotExists(expression.Name(attrPK)))
	if err != nil {
		return fmt.Errorf("create generation %d: %w", gen, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &control, Item: record,
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names()})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("create generation %d: record it: %w", gen, edge(err))
	}
	if len(m.report.Created) > 0 {
		s.logger.Info("read-model generation created", "generation", gen, "created", strings.Join(m.report.Created, "; "))
	}
	return nil
}

// SwitchGeneration makes gen the generation that serves reads, atomically (one
// transaction that checks gen was created); domain.ErrNotFound when it was not.
// Stores following the current generation see the switch within GenerationRefresh;
// their commits see it at once.
func (s *ReadModelStore) SwitchGeneration(ctx context.Context, gen int) error {
	control := s.cfg.TablesOf(1).Control
	exists, err := conditionOf(expression.AttributeExists(expression.Name(attrPK)))
	if err != nil {
		return fmt.Errorf("switch to generation %d: %w", gen, err)
	}
	current := controlKey(pkGeneration, skCurrent)
	current[attrGen], current[attrUpdatedAt] = num(int64(gen)), num(time.Now().UnixMilli())
	_, err = s.client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{ConditionCheck: &types.ConditionCheck{TableName: &control, Key: controlKey(pkGeneration, generationSK(gen)),
			ConditionExpression: exists.Condition(), ExpressionAttributeNames: exists.Names()}},
		{Put: &types.Put{TableName: &control, Item: current}},
	}})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) && len(tce.CancellationReasons) > 0 && aws.ToString(tce.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return fmt.Errorf("switch to generation %d: %w", gen, domain.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("switch to generation %d: %w", gen, edge(err))
	}
	s.forgetGeneration()
	s.logger.Info("read-model generation switched", "generation", gen)
	return nil
}

// DropGeneration deletes the tables of generation gen and its record. The current
// generation cannot be dropped (domain.ErrConflict); dropping one that does not exist
// does nothing.
func (s *ReadModelStore) DropGeneration(ctx context.Context, gen int) error {
	current, _, err := s.CurrentGeneration(ctx)
	if err != nil && !errors.Is(err, domain.ErrNotFound) {
		return fmt.Errorf("drop generation %d: %w", gen, err)
	}
	if current == gen {
		return fmt.Errorf("drop generation %d: it serves reads: %w", gen, domain.ErrConflict)
	}
	for _, spec := range generationSpecs(&s.cfg, s.reg, gen) {
		table := spec.name
		_, err := s.client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(table)})
		if err != nil && !isTableMissing(err) {
			return fmt.Errorf("drop generation %d: delete table %s: %w", gen, table, err)
		}
	}
	control := s.cfg.TablesOf(1).Control
	if _, err := s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &control, Key: controlKey(pkGeneration, generationSK(gen))}); err != nil {
		return fmt.Errorf("drop generation %d: forget it: %w", gen, edge(err))
	}
	// A rebuild that died loading gen left live commits recording for it.
	if err := s.StopRecording(ctx, gen); err != nil {
		return fmt.Errorf("drop generation %d: %w", gen, err)
	}
	return nil
}

// ProjectionStoreOf is the projection store of generation gen.
func (s *ReadModelStore) ProjectionStoreOf(gen int) app.ProjectionStore {
	return &ReadModelStore{client: s.client, cfg: s.cfg, reg: s.reg, gen: gen, logger: s.logger, now: s.now}
}
