package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/domain"
)

// Items of the control table (PK, SK):
//
//	GENERATION / CURRENT        gen: the read-model generation that serves reads;
//	                            building: the generation a rebuild is loading, while
//	                            live commits record the sessions they change for it
//	REBUILD#<gen> / SESSION#<id> changes: how many live commits changed the session
//	                            while generation gen was being built
//	GENERATION / GEN#<gen>      gen, createdAt, signature: a generation whose tables
//	                            exist, and the read models it was built for
//	CHECKPOINT / <name>         position, updatedAt: a feed position
//	COUNTER    / <name>         value: a sequence (quarantine ids)
//	LEASE#<streamArn> / <shard> owner, counter, checkpoint, parentIds: stream shard
//	                            leases (reserved for the DynamoDB Streams subscriber)
const (
	pkGeneration  = "GENERATION"
	skCurrent     = "CURRENT"
	pkCheckpoint  = "CHECKPOINT"
	pkCounter     = "COUNTER"
	attrGen       = "gen"
	attrBuilding  = "building"
	attrChanges   = "changes"
	attrCreatedAt = "createdAt"
	attrSignature = "signature"
	attrPosition  = "position"
	attrUpdatedAt = "updatedAt"
	attrValue     = "value"
)

// LeaseKeyPrefix starts the PK of the stream-lease items in the control table:
// "LEASE#<streamArn>", with the shard id as SK.
const LeaseKeyPrefix = "LEASE#"

// controlKey is the key of a control item.
func controlKey(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{attrPK: str(pk), attrSK: str(sk)}
}

func generationSK(gen int) string { return fmt.Sprintf("GEN#%010d", gen) }

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func num(n int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(n, 10)}
}

// numberOf reads a number attribute; ok is false when it is missing or not a number.
func numberOf(item map[string]types.AttributeValue, name string) (int64, bool) {
	n, isN := item[name].(*types.AttributeValueMemberN)
	if !isN {
		return 0, false
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	return v, err == nil
}

// stringOf reads a string attribute, "" when it is missing or not a string.
func stringOf(item map[string]types.AttributeValue, name string) string {
	if s, ok := item[name].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return ""
}

// readCurrentGeneration reads the current generation; domain.ErrNotFound (wrapped)
// when none is recorded.
func readCurrentGeneration(ctx context.Context, client *dynamodb.Client, control string) (int, error) {
	gen, _, err := readGenerationState(ctx, client, control)
	return gen, err
}

// readGenerationState reads the current generation and the one being built (0: none).
func readGenerationState(ctx context.Context, client *dynamodb.Client, control string) (gen, building int, err error) {
	out, err := client.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &control, Key: controlKey(pkGeneration, skCurrent), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("read current generation: %w", edge(err))
	}
	g, ok := numberOf(out.Item, attrGen)
	if !ok {
		return 0, 0, fmt.Errorf("no current read-model generation in %s (run `agentwatch migrate`): %w", control, domain.ErrNotFound)
	}
	b, _ := numberOf(out.Item, attrBuilding)
	return int(g), int(b), nil
}

// EnsureCurrentGeneration makes generation 1 of the read models current when no
// generation is (a worker started right after the stack was deployed, before anyone ran
// `agentwatch migrate`), and returns the current generation. It is one conditional
// write; concurrent callers agree on the result.
func EnsureCurrentGeneration(ctx context.Context, client *dynamodb.Client, cfg Config, signature string) (int, error) {
	cfg.SetDefaults()
	gen, _, err := ensureCurrentGeneration(ctx, client, cfg.TablesOf(1).Control, signature)
	return gen, err
}

// ensureCurrentGeneration returns the current generation, making generation 1 current
// when none is (created reports that), recorded as built for the read models of
// signature (a new deployment's read models are its tables, empty).
func ensureCurrentGeneration(ctx context.Context, client *dynamodb.Client, control, signature string) (gen int, created bool, err error) {
	gen, err = readCurrentGeneration(ctx, client, control)
	if !errors.Is(err, domain.ErrNotFound) {
		return gen, false, err
	}
	now := num(time.Now().UnixMilli())
	absent, err := conditionOf(expression.AttributeNotExists(expression.Name(attrPK)))
	if err != nil {
		return 0, false, err
	}
	current := controlKey(pkGeneration, skCurrent)
	current[attrGen], current[attrUpdatedAt] = num(1), now
	record := controlKey(pkGeneration, generationSK(1))
	record[attrGen], record[attrCreatedAt], record[attrSignature] = num(1), now, str(signature)
	_, err = client.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{TableName: &control, Item: current, ConditionExpression: absent.Condition(),
			ExpressionAttributeNames: absent.Names()}},
		{Put: &types.Put{TableName: &control, Item: record}},
	}})
	var tce *types.TransactionCanceledException
	if errors.As(err, &tce) {
		// Another migrate made a generation current meanwhile.
		gen, err = readCurrentGeneration(ctx, client, control)
		return gen, false, err
	}
	if err != nil {
		return 0, false, fmt.Errorf("make generation 1 current: %w", err)
	}
	return 1, true, nil
}

// conditionOf builds a condition expression with the SDK's expression builder.
func conditionOf(c expression.ConditionBuilder) (expression.Expression, error) {
	e, err := expression.NewBuilder().WithCondition(c).Build()
	if err != nil {
		return e, fmt.Errorf("build condition: %w", err)
	}
	return e, nil
}
