package dynamodbstreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
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
	"github.com/agentwatch/agentwatch/app"
)

// The conformance suite's messages are not journal items: arbitrary payloads ("x",
// "42"), their own UUIDs and metadata, and a topic per test. So the suite runs the
// Subscriber's whole machinery — stream discovery, leases, pages, checkpoints,
// ack/nack, redelivery, drain, close, ctx — on DynamoDB Local's real streams, with a
// "raw" record decoder: a publisher writes each message as a table item (uuid, payload
// and metadata attributes) in the table its topic names (Config.TableName empty), all
// under one partition key so that the table's stream keeps them in order. The journal
// decoding is tested in TestDecodeJournalRecord and the TestFakeStream_ and
// TestDynamoDBLocal_ tests.
//
// The Subscriber delivers pages — one message per GetRecords call, carrying every
// record the call returned — where the suite expects one message per message
// published. pageSplitter sits between the two, as a consumer of pages would: it hands
// the records of a page out one at a time, each after the one before was acked; it
// acks the page once all of them were, and nacks it (the Subscriber delivers it again,
// whole) as soon as one is nacked. So the suite's checks of order, Ack, Nack,
// redelivery, Close and ctx are checks of the page machinery underneath.

// Attributes of a raw message item.
const (
	rawPK       = "MSG"
	rawUUID     = "uuid"
	rawPayload  = "payload"
	rawMetadata = "metadata"
)

// rawMessage is a raw message item as a page carries it.
type rawMessage struct {
	UUID     string            `json:"uuid"`
	Payload  []byte            `json:"payload"`
	Metadata map[string]string `json:"metadata"`
}

// decodeRawRecord maps a raw message item back to its message, as a page's item.
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
	m := rawMessage{UUID: uuid.Value, Payload: payload.Value, Metadata: map[string]string{}}
	if md, ok := img[rawMetadata].(*stypes.AttributeValueMemberM); ok {
		for k, v := range md.Value {
			if s, ok := v.(*stypes.AttributeValueMemberS); ok {
				m.Metadata[k] = s.Value
			}
		}
	}
	item, err := json.Marshal(m)
	if err != nil {
		return decoded{invalid: err}
	}
	return decoded{item: item}
}

// pageSplitter is a message.Subscriber that delivers the records of the pages of a
// Subscriber as the messages that were published (see above).
type pageSplitter struct {
	*Subscriber
	tables *rawTables
	wg     sync.WaitGroup
}

func (s *pageSplitter) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if err := s.tables.ensure(topic); err != nil {
		return nil, err
	}
	pages, err := s.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		for page := range pages {
			s.split(page, out)
		}
	}()
	return out, nil
}

// split hands out a page's records one at a time and settles the page.
func (s *pageSplitter) split(page *message.Message, out chan<- *message.Message) {
	p, err := app.DecodePage(page.Payload)
	if err != nil {
		page.Nack()
		return
	}
	for _, rec := range p.Records {
		var m rawMessage
		if err := json.Unmarshal(rec.Item, &m); err != nil {
			page.Nack()
			return
		}
		msg := message.NewMessage(m.UUID, m.Payload)
		maps.Copy(msg.Metadata, m.Metadata)
		ctx, cancel := context.WithCancel(page.Context())
		msg.SetContext(ctx)
		if !s.handOut(page, msg, out) {
			cancel()
			return
		}
		cancel() // each message's context ends with it, as the suite expects
	}
	page.Ack()
}

// handOut delivers msg and waits for its Ack; false when the page was nacked or its
// subscription ended (the page is delivered again).
func (s *pageSplitter) handOut(page, msg *message.Message, out chan<- *message.Message) bool {
	select {
	case out <- msg:
	case <-page.Context().Done():
		return false
	}
	select {
	case <-msg.Acked():
		return true
	case <-msg.Nacked():
		page.Nack()
		return false
	case <-page.Context().Done():
		return false
	}
}

// SubscribeInitialize creates the topic's table.
func (s *pageSplitter) SubscribeInitialize(topic string) error { return s.tables.ensure(topic) }

func (s *pageSplitter) Close() error {
	err := s.Subscriber.Close()
	s.wg.Wait()
	return err
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
		// Order holds within a shard (one page out at a time, redelivered whole), and the
		// publisher keeps a topic's messages under one partition key, whose records stay
		// in one shard's lineage.
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
			NackBackoff: 5 * time.Millisecond, MaxNackBackoff: 20 * time.Millisecond,
			CheckpointInterval: 100 * time.Millisecond, DrainTimeout: time.Second,
		}
		sub, err := newSubscriber(cfg, Ports{Streams: streams, Tables: ddb, Leases: leases}, &memQuarantine{}, testLogger(), nil, decodeRawRecord)
		require.NoError(t, err)
		return &rawPublisher{tables: tables}, &pageSplitter{Subscriber: sub, tables: tables}
	}
	tests.TestPubSub(t, features, constructor, nil)
}
