package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
)

// Attributes of a lease item in the control table (see adapters/dynamodb/control.go,
// which reserves PK "LEASE#<streamArn>" with the shard id as SK for these items).
const (
	leaseAttrPK           = "PK"
	leaseAttrSK           = "SK"
	leaseAttrOwner        = "owner"
	leaseAttrCounter      = "counter"
	leaseAttrCheckpoint   = "checkpoint"
	leaseAttrParentIDs    = "parentIds"
	leaseAttrPendingOwner = "pendingOwner"
	leaseAttrEndedAt      = "endedAt"
	leaseAttrUpdatedAt    = "updatedAt"
	leaseAttrWatermark    = "watermark"
)

// DynamoDBLeaseStore is a LeaseStore in a DynamoDB table with a string PK and SK — the
// control table of adapters/dynamodb. A stream's leases share PK "LEASE#<streamArn>";
// each has its shard id as SK and the attributes owner (absent when free), counter,
// checkpoint, parentIds (a string set), pendingOwner, and endedAt, watermark and
// updatedAt (epoch ms).
// Conditional writes that fail are reported as ErrLeaseConflict.
type DynamoDBLeaseStore struct {
	client *dynamodb.Client
	table  string
	now    func() time.Time
}

var _ LeaseStore = (*DynamoDBLeaseStore)(nil)

// NewDynamoDBLeaseStore returns the leases kept in table.
func NewDynamoDBLeaseStore(client *dynamodb.Client, table string) (*DynamoDBLeaseStore, error) {
	if client == nil {
		return nil, errors.New("new lease store: nil DynamoDB client")
	}
	if table == "" {
		return nil, errors.New("new lease store: empty table name")
	}
	return &DynamoDBLeaseStore{client: client, table: table, now: time.Now}, nil
}

func leasePK(streamArn string) string { return awdynamodb.LeaseKeyPrefix + streamArn }

func leaseKey(streamArn, shardID string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		leaseAttrPK: &types.AttributeValueMemberS{Value: leasePK(streamArn)},
		leaseAttrSK: &types.AttributeValueMemberS{Value: shardID},
	}
}

// ListLeases queries the stream's partition of the table, consistently.
func (s *DynamoDBLeaseStore) ListLeases(ctx context.Context, streamArn string) ([]Lease, error) {
	e, err := expression.NewBuilder().WithKeyCondition(expression.Key(leaseAttrPK).Equal(expression.Value(leasePK(streamArn)))).Build()
	if err != nil {
		return nil, fmt.Errorf("list leases of %s: %w", streamArn, err)
	}
	p := dynamodb.NewQueryPaginator(s.client, &dynamodb.QueryInput{
		TableName: &s.table, ConsistentRead: aws.Bool(true), KeyConditionExpression: e.KeyCondition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
	})
	var out []Lease
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list leases of %s in %s: %w", streamArn, s.table, err)
		}
		for _, item := range page.Items {
			l, err := leaseFromItem(item)
			if err != nil {
				return nil, fmt.Errorf("list leases of %s in %s: %w", streamArn, s.table, err)
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// GetLease reads one lease item, consistently.
func (s *DynamoDBLeaseStore) GetLease(ctx context.Context, streamArn, shardID string) (Lease, error) {
	out, err := s.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: leaseKey(streamArn, shardID), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s of %s in %s: %w", shardID, streamArn, s.table, err)
	}
	if len(out.Item) == 0 {
		return Lease{}, fmt.Errorf("get lease %s of %s: %w", shardID, streamArn, ErrLeaseNotFound)
	}
	l, err := leaseFromItem(out.Item)
	if err != nil {
		return Lease{}, fmt.Errorf("get lease %s of %s: %w", shardID, streamArn, err)
	}
	return l, nil
}

// CreateLease puts l if no item has its key.
func (s *DynamoDBLeaseStore) CreateLease(ctx context.Context, streamArn string, l Lease) (bool, error) {
	item := leaseKey(streamArn, l.ShardID)
	item[leaseAttrCounter] = &types.AttributeValueMemberN{Value: strconv.FormatInt(l.Counter, 10)}
	item[leaseAttrUpdatedAt] = epochMillis(s.now())
	if l.Owner != "" {
		item[leaseAttrOwner] = &types.AttributeValueMemberS{Value: l.Owner}
	}
	if l.Checkpoint != "" {
		item[leaseAttrCheckpoint] = &types.AttributeValueMemberS{Value: l.Checkpoint}
	}
	if len(l.ParentShardIDs) > 0 {
		item[leaseAttrParentIDs] = &types.AttributeValueMemberSS{Value: slices.Clone(l.ParentShardIDs)}
	}
	e, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(leaseAttrPK))).Build()
	if err != nil {
		return false, fmt.Errorf("create lease %s: %w", l.ShardID, err)
	}
	_, err = s.client.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item,
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names()})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create lease %s of %s in %s: %w", l.ShardID, streamArn, s.table, err)
	}
	return true, nil
}

// UpdateLease writes u with one conditional UpdateItem and returns the new item.
func (s *DynamoDBLeaseStore) UpdateLease(ctx context.Context, streamArn, shardID string, u LeaseUpdate) (Lease, error) {
	e, err := leaseUpdateExpression(u, s.now())
	if err != nil {
		return Lease{}, fmt.Errorf("update lease %s: %w", shardID, err)
	}
	out, err := s.client.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &s.table, Key: leaseKey(streamArn, shardID),
		UpdateExpression: e.Update(), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values(),
		ReturnValues: types.ReturnValueAllNew,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return Lease{}, fmt.Errorf("update lease %s of %s: %w", shardID, streamArn, ErrLeaseConflict)
	}
	if err != nil {
		return Lease{}, fmt.Errorf("update lease %s of %s in %s: %w", shardID, streamArn, s.table, err)
	}
	l, err := leaseFromItem(out.Attributes)
	if err != nil {
		return Lease{}, fmt.Errorf("update lease %s of %s: %w", shardID, streamArn, err)
	}
	return l, nil
}

// leaseUpdateExpression renders u as an update with its condition.
func leaseUpdateExpression(u LeaseUpdate, now time.Time) (expression.Expression, error) {
	owner := expression.Name(leaseAttrOwner)
	var cond expression.ConditionBuilder
	if u.ExpectOwner == "" {
		cond = expression.AttributeNotExists(owner)
	} else {
		cond = owner.Equal(expression.Value(u.ExpectOwner))
	}
	// The key must exist: an update never creates a lease.
	cond = cond.And(expression.AttributeExists(expression.Name(leaseAttrPK)))
	if u.HandoffTo != "" {
		cond = cond.And(expression.AttributeNotExists(expression.Name(leaseAttrPendingOwner)))
		upd := expression.Set(expression.Name(leaseAttrPendingOwner), expression.Value(u.HandoffTo))
		return expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
	}
	counter := expression.Name(leaseAttrCounter)
	cond = cond.And(counter.Equal(expression.Value(u.ExpectCounter)))
	upd := expression.Set(counter, expression.Value(u.ExpectCounter+1)).
		Set(expression.Name(leaseAttrUpdatedAt), expression.Value(now.UnixMilli()))
	if u.NewOwner == "" {
		upd = upd.Remove(owner)
	} else {
		upd = upd.Set(owner, expression.Value(u.NewOwner))
	}
	if u.NewOwner != u.ExpectOwner {
		upd = upd.Remove(expression.Name(leaseAttrPendingOwner))
	}
	if u.Checkpoint != "" {
		upd = upd.Set(expression.Name(leaseAttrCheckpoint), expression.Value(u.Checkpoint))
	}
	if u.Ended {
		upd = upd.Set(expression.Name(leaseAttrEndedAt), expression.Value(now.UnixMilli()))
	}
	if !u.Watermark.IsZero() {
		upd = upd.Set(expression.Name(leaseAttrWatermark), expression.Value(u.Watermark.UnixMilli()))
	}
	return expression.NewBuilder().WithCondition(cond).WithUpdate(upd).Build()
}

// DeleteLease deletes the item if its counter is still counter.
func (s *DynamoDBLeaseStore) DeleteLease(ctx context.Context, streamArn, shardID string, counter int64) error {
	e, err := expression.NewBuilder().WithCondition(expression.Name(leaseAttrCounter).Equal(expression.Value(counter))).Build()
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", shardID, err)
	}
	_, err = s.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: leaseKey(streamArn, shardID),
		ConditionExpression: e.Condition(), ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return fmt.Errorf("delete lease %s of %s: %w", shardID, streamArn, ErrLeaseConflict)
	}
	if err != nil {
		return fmt.Errorf("delete lease %s of %s in %s: %w", shardID, streamArn, s.table, err)
	}
	return nil
}

func epochMillis(t time.Time) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixMilli(), 10)}
}

// leaseFromItem reads a lease item.
func leaseFromItem(item map[string]types.AttributeValue) (Lease, error) {
	str := func(name string) string {
		if v, ok := item[name].(*types.AttributeValueMemberS); ok {
			return v.Value
		}
		return ""
	}
	num := func(name string) (int64, error) {
		v, ok := item[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseInt(v.Value, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("lease %s: attribute %s: %w", str(leaseAttrSK), name, err)
		}
		return n, nil
	}
	l := Lease{ShardID: str(leaseAttrSK), Owner: str(leaseAttrOwner), Checkpoint: str(leaseAttrCheckpoint),
		PendingOwner: str(leaseAttrPendingOwner)}
	if l.ShardID == "" {
		return Lease{}, errors.New("lease item without a shard id (SK)")
	}
	var err error
	if l.Counter, err = num(leaseAttrCounter); err != nil {
		return Lease{}, err
	}
	ended, err := num(leaseAttrEndedAt)
	if err != nil {
		return Lease{}, err
	}
	if ended != 0 {
		l.EndedAt = time.UnixMilli(ended).UTC()
	}
	wm, err := num(leaseAttrWatermark)
	if err != nil {
		return Lease{}, err
	}
	if wm != 0 {
		l.Watermark = time.UnixMilli(wm).UTC()
	}
	if ss, ok := item[leaseAttrParentIDs].(*types.AttributeValueMemberSS); ok {
		l.ParentShardIDs = slices.Clone(ss.Value)
		slices.Sort(l.ParentShardIDs)
	}
	return l, nil
}
