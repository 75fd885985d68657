package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
)

// The conformance suite's messages are not journal items: arbitrary payloads ("x",
// "42"), their own UUIDs and metadata, and a topic per test. So the suite runs the
// Subscriber's whole machinery — stream discovery, leases, checkpoints, ack/nack,
// redelivery, drain, close, ctx — on DynamoDB Local's real streams, with a "raw" record
// decoder: a publisher writes each message as a table item (uuid, payload and metadata
// attributes) in the table its topic names (Config.TableName empty), all under one
// partition key so that the table's stream keeps them in order. The journal decoding is
// tested in TestDecodeJournalRecord and the TestFakeStream_ and TestDynamoDBLocal_ tests.

// Attributes of a raw message item.
const (
	rawPK       = "MSG"
	rawUUID     = "uuid"
	rawPayload  = "payload"
	rawMetadata = "metadata"
)

// decodeRawRecord maps a raw message item back to its message.
func decodeRawRecord(r *stypes.Record) decoded {
	if r.EventName == stypes.OperationTypeRemove {
		return decoded{skip: skipRemove}
	}
	img := r.Dynamodb.NewImage
	if img == nil {
		return decoded{skip: skipNoNewImage}
	}
	uuid, ok := img[rawUUID].(*stypes.AttributeValueMemberS)
	payload, ok2 := img[rawPayload].(*stypes.AttributeValueMemberB)
	if !ok || !ok2 {
		return decoded{invalid: errors.New("not a raw message item")}
	}
	md := message.Metadata{}
	if m, ok := img[rawMetadata].(*stypes.AttributeValueMemberM); ok {
		for k, v := range m.Value {
			if s, ok := v.(*stypes.AttributeValueMemberS); ok {
				md[k] = s.Value
			}
		}
	}
	return decoded{uuid: uuid.Value, payload: payload.Value, metadata: md}
}

// rawTables creates the tables that topics name, once each.
type rawTables struct {
	client *dynamodb.Client
	mu     sync.Mutex
	done   map[string]*sync.Once
	errs   map[string]error
}

func (r *rawTables) ensure(topic string) error {
	r.mu.Lock()
	once, ok := r.done[topic]
	if !ok {
		once = &sync.Once{}
		r.done[topic] = once
	}
	r.mu.Unlock()
	once.Do(func() {
		err := createKeyTable(context.Background(), r.client, topic, true)
		r.mu.Lock()
		r.errs[topic] = err
		r.mu.Unlock()
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.errs[topic]
}

// rawPublisher writes each message as an item of the table its topic names, one
// PutItem at a time (so the stream has them in publishing order).
type rawPublisher struct {
	tables *rawTables
	mu     sync.Mutex
	closed bool
}

func (p *rawPublisher) Publish(topic string, msgs ...*message.Message) error {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errors.New("publisher closed")
	}
	if err := p.tables.ensure(topic); err != nil {
		return err
	}
	for _, m := range msgs {
		md := map[string]dtypes.AttributeValue{}
		for k, v := range m.Metadata {
			md[k] = &dtypes.AttributeValueMemberS{Value: v}
		}
		item := map[string]dtypes.AttributeValue{
			"PK":        &dtypes.AttributeValueMemberS{Value: rawPK},
			"SK":        &dtypes.AttributeValueMemberS{Value: watermill.NewULID() + "/" + m.UUID},
			rawUUID:     &dtypes.AttributeValueMemberS{Value: m.UUID},
			rawPayload:  &dtypes.AttributeValueMemberB{Value: append([]byte{}, m.Payload...)},
			rawMetadata: &dtypes.AttributeValueMemberM{Value: md},
		}
		if _, err := p.tables.client.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(topic), Item: item}); err != nil {
			return fmt.Errorf("publish %s to %s: %w", m.UUID, topic, err)
		}
	}
	return nil
}

func (p *rawPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

// rawSubscriber makes sure a topic's table exists before subscribing to its stream.
type rawSubscriber struct {
	*Subscriber
	tables *rawTables
}

func (s rawSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.tables.ensure(topic); err != nil {
		return nil, err
	}
	return s.Subscriber.Subscribe(ctx, topic)
}

// SubscribeInitialize creates the topic's table.
func (s rawSubscriber) SubscribeInitialize(topic string) error { return s.tables.ensure(topic) }

// conformanceFullEnv runs the suite with its full message counts (about 21,000 stream
// records and 6 minutes on two cores) instead of its short ones.
const conformanceFullEnv = "AGENTWATCH_TEST_CONFORMANCE_FULL"

func TestDynamoDBLocal_Conformance(t *testing.T) {
	ddb, streams := localClients(t)
	prefix := dynamotest.TablePrefix(t, ddb)
	leaseTable := prefix + "-leases"
	require.NoError(t, createKeyTable(t.Context(), ddb, leaseTable, false))
	tables := &rawTables{client: ddb, done: map[string]*sync.Once{}, errs: map[string]error{}}
	leases, err := NewDynamoDBLeaseStore(ddb, leaseTable)
	require.NoError(t, err)

	features := tests.Features{
		// Leases make every subscriber of a stream one group: there are no separate
		// consumer groups (one lease table per group would be), and a new subscriber
		// continues from the group's checkpoints instead of receiving old messages.
		ConsumerGroups:                   false,
		NewSubscriberReceivesOldMessages: false,
		ExactlyOnceDelivery:              false,
		// Order holds within a shard (MaxInFlight 1), and the publisher keeps a topic's
		// messages under one partition key, whose records stay in one shard's lineage.
		GuaranteedOrder: true,
		Persistent:      true,
		// The topic names a table; table names must stay under the test's prefix so
		// that the tables are deleted afterwards.
		GenerateTopicFunc: func(tctx tests.TestContext) string { return prefix + "-" + string(tctx.TestID) },
		// DynamoDB Local slows down after ~50,000 stream records and times out on its
		// internal locks under the full suite's parallel load.
		ForceShort: os.Getenv(conformanceFullEnv) == "",
	}
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		cfg := Config{
			LeaseDuration: 3 * time.Second, RenewInterval: time.Second, ShardSyncInterval: time.Second,
			// TestContinueAfterErrors nacks the same message 100 times per subscriber.
			NackBackoff: 5 * time.Millisecond, MaxRetries: 1000,
			CheckpointInterval: 100 * time.Millisecond, DrainTimeout: time.Second,
		}
		sub, err := newSubscriber(cfg, Ports{Streams: streams, Tables: ddb, Leases: leases}, &memQuarantine{}, testLogger(), nil, decodeRawRecord)
		require.NoError(t, err)
		return &rawPublisher{tables: tables}, rawSubscriber{Subscriber: sub, tables: tables}
	}
	tests.TestPubSub(t, features, constructor, nil)
}
