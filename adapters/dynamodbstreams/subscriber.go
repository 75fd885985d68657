package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/app"
)

// Subscriber is a watermill message.Subscriber over a DynamoDB table's stream, sharing
// the stream's shards with other workers through leases (see the package doc for the
// delivery and lease guarantees).
//
// Subscribe reads the stream of Config.TableName (or of the table the topic names, when
// TableName is empty) and returns a channel of page messages: one per GetRecords call
// of a shard that returned INSERT or MODIFY records (an app.JournalPage of them), one
// page of a shard out at a time, shards in parallel. Messages must be acked or nacked;
// Ack moves the shard's checkpoint past the page, Nack delivers the page again after a
// backoff (Config.NackBackoff, doubling up to Config.MaxNackBackoff), for as long as it
// takes. Each call of Subscribe is a
// worker of its own in the lease table (owner "<WorkerID>/<n>"), so two subscriptions
// to one table share its shards like two processes would.
//
// Canceling the ctx given to Subscribe ends that subscription: it stops reading,
// waits up to Config.DrainTimeout for the pages in flight (whose contexts derive from
// ctx, and so are canceled too), writes the final checkpoints, releases its leases and
// closes its channel. Close does the same for every subscription (message contexts stay
// alive for the drain and are canceled after it) and returns when all channels are
// closed. Close is idempotent; Subscribe fails after it. Subscriber is safe for
// concurrent use.
type Subscriber struct {
	cfg        Config
	streams    StreamsAPI
	tables     TableDescriber
	leases     LeaseStore
	quarantine app.Quarantine
	logger     watermill.LoggerAdapter
	metrics    *metrics
	decode     recordDecoder

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	// halt, closed by kill, ends subscriptions as a crash would: no final checkpoints,
	// no releases.
	halt   chan struct{}
	subs   int
	wg     sync.WaitGroup
	killed sync.Once
	// readerHook, when set (by tests, before Subscribe), is told when a shard reader
	// starts and when it stops delivering.
	readerHook func(shardID, owner string, active bool)

	// readers are the shard readers running, for the metrics and the readiness check.
	readersMu sync.Mutex
	readers   map[*shardReader]struct{}

	// streamArns caches the latest stream of each table Watermark was asked about.
	arnMu      sync.Mutex
	streamArns map[string]string
}

var _ message.Subscriber = (*Subscriber)(nil)

// Ports are the outside services a Subscriber uses.
type Ports struct {
	// Streams reads the streams: a *dynamodbstreams.Client.
	Streams StreamsAPI
	// Tables finds a table's latest stream: a *dynamodb.Client.
	Tables TableDescriber
	// Leases keeps the shard leases: a DynamoDBLeaseStore.
	Leases LeaseStore
}

// NewSubscriber returns a Subscriber reading streams with streams, finding them and
// keeping leases in cfg.LeaseTable with ddb, and quarantining records it cannot deliver
// in quarantine. cfg's zero fields take their defaults. logger may be nil; reg, when
// set, gets the subscriber's metrics (shared with other subscribers registered there).
func NewSubscriber(cfg Config, streams *dynamodbstreams.Client, ddb *dynamodb.Client, quarantine app.Quarantine,
	logger watermill.LoggerAdapter, reg prometheus.Registerer) (*Subscriber, error) {
	if streams == nil || ddb == nil {
		return nil, errors.New("new dynamodbstreams subscriber: nil client")
	}
	if cfg.LeaseTable == "" {
		return nil, errors.New("new dynamodbstreams subscriber: invalid config: LeaseTable must be set")
	}
	leases, err := NewDynamoDBLeaseStore(ddb, cfg.LeaseTable)
	if err != nil {
		return nil, fmt.Errorf("new dynamodbstreams subscriber: %w", err)
	}
	return NewSubscriberWithPorts(cfg, Ports{Streams: streams, Tables: ddb, Leases: leases}, quarantine, logger, reg)
}

// NewSubscriberWithPorts is NewSubscriber over any implementation of its ports (tests
// use fakes); cfg.LeaseTable is not used.
func NewSubscriberWithPorts(cfg Config, ports Ports, quarantine app.Quarantine, logger watermill.LoggerAdapter,
	reg prometheus.Registerer) (*Subscriber, error) {
	return newSubscriber(cfg, ports, quarantine, logger, reg, decodeJournalRecord)
}

func newSubscriber(cfg Config, ports Ports, quarantine app.Quarantine, logger watermill.LoggerAdapter,
	reg prometheus.Registerer, decode recordDecoder) (*Subscriber, error) {
	if ports.Streams == nil || ports.Tables == nil || ports.Leases == nil {
		return nil, errors.New("new dynamodbstreams subscriber: missing port")
	}
	if quarantine == nil {
		return nil, errors.New("new dynamodbstreams subscriber: nil quarantine")
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new dynamodbstreams subscriber: invalid config: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	m, err := newMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("new dynamodbstreams subscriber: %w", err)
	}
	s := &Subscriber{
		cfg: cfg, streams: ports.Streams, tables: ports.Tables, leases: ports.Leases, quarantine: quarantine,
		logger:  logger.With(watermill.LogFields{"subscriber": "dynamodbstreams", "worker": cfg.WorkerID}),
		metrics: m, decode: decode, closing: make(chan struct{}), halt: make(chan struct{}),
		readers: map[*shardReader]struct{}{}, streamArns: map[string]string{},
	}
	m.shards.add(s)
	return s, nil
}

func (s *Subscriber) addReader(r *shardReader) {
	s.readersMu.Lock()
	s.readers[r] = struct{}{}
	s.readersMu.Unlock()
}

func (s *Subscriber) removeReader(r *shardReader) {
	s.readersMu.Lock()
	delete(s.readers, r)
	s.readersMu.Unlock()
}

// activeReaders returns the shard readers running now, ordered by shard.
func (s *Subscriber) activeReaders() []*shardReader {
	s.readersMu.Lock()
	out := make([]*shardReader, 0, len(s.readers))
	for r := range s.readers {
		out = append(out, r)
	}
	s.readersMu.Unlock()
	slices.SortFunc(out, func(a, b *shardReader) int { return strings.Compare(a.shardID, b.shardID) })
	return out
}

// CheckStalled is a readiness check: it fails, naming each shard and the last read
// error, when a shard this subscriber holds has made no progress — no successful
// GetRecords and no page acked — for longer than Config.StallTimeout. A reader whose
// reads keep failing (throttled, DynamoDB Streams down) is then not ready, and its
// silence is not mistaken for a caught-up shard.
func (s *Subscriber) CheckStalled(context.Context) error {
	now := time.Now()
	var errs []error
	for _, r := range s.activeReaders() {
		st := r.status(now)
		if st.sinceProgress <= s.cfg.StallTimeout {
			continue
		}
		var whys []string
		if st.reading > 0 {
			whys = append(whys, fmt.Sprintf("a GetRecords call running for %s", st.reading.Round(time.Second)))
		}
		if st.lastErr != "" {
			whys = append(whys, "last read error: "+st.lastErr)
		}
		if len(whys) == 0 {
			whys = append(whys, "no read error: the page out is not acked")
		}
		why := strings.Join(whys, "; ")
		errs = append(errs, fmt.Errorf("stream shard %s stalled: no successful read for %s and no page acked for %s (bound %s); %s",
			r.shardID, st.sinceRead.Round(time.Second), st.sinceProgress.Round(time.Second), s.cfg.StallTimeout, why))
	}
	return errors.Join(errs...)
}

// Subscribe starts a subscription to the stream of Config.TableName (or of the table
// named topic, when TableName is empty) and returns its output channel. It fails when
// the table has no stream with new images, or once the subscriber is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("subscribe: dynamodbstreams subscriber is closed")
	}
	s.subs++
	n := s.subs
	s.wg.Add(1)
	s.mu.Unlock()

	table := s.cfg.TableName
	if table == "" {
		table = topic
	}
	arn, err := s.latestStream(ctx, table)
	if err != nil {
		s.wg.Done()
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	out := make(chan *message.Message)
	sub := newSubscription(ctx, s, table, arn, s.cfg.WorkerID+"/"+strconv.Itoa(n), out)
	go func() {
		defer s.wg.Done()
		defer close(out)
		sub.run(ctx)
	}()
	return out, nil
}

// latestStream returns the ARN of the table's current stream, which must carry new
// images.
func (s *Subscriber) latestStream(ctx context.Context, table string) (string, error) {
	out, err := s.tables.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		return "", fmt.Errorf("describe table %s: %w", table, err)
	}
	t := out.Table
	if t == nil || t.LatestStreamArn == nil || t.StreamSpecification == nil || !aws.ToBool(t.StreamSpecification.StreamEnabled) {
		return "", fmt.Errorf("table %s has no stream enabled (enable one with NEW_IMAGE: `agentwatch migrate`)", table)
	}
	switch v := t.StreamSpecification.StreamViewType; v {
	case types.StreamViewTypeNewImage, types.StreamViewTypeNewAndOldImages:
	default:
		return "", fmt.Errorf("the stream of table %s carries %s, not the new images it needs (NEW_IMAGE or NEW_AND_OLD_IMAGES)", table, v)
	}
	return *t.LatestStreamArn, nil
}

// Close ends every subscription — drain, final checkpoints, release — and waits until
// their output channels are closed. It is idempotent.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	s.logger.Debug("dynamodbstreams subscriber closed", nil)
	return nil
}

// kill ends every subscription as if the process had crashed: reading stops at once,
// nothing more is written to the leases (they expire). For tests.
func (s *Subscriber) kill() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.killed.Do(func() { close(s.halt) })
	s.wg.Wait()
}
