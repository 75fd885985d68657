package sqs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsqs "github.com/ThreeDotsLabs/watermill-aws/sqs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/agentwatch/agentwatch/app"
)

// Metadata that Subscriber sets on every message, besides the SQS message attributes
// (which watermill-aws copies) and app.MetaSource ("sqs") and app.MetaPosition (the SQS
// message id, the key of a quarantined message).
const (
	// MetaReceiveCount is the message's ApproximateReceiveCount: 1 on its first delivery.
	MetaReceiveCount = "sqs_receive_count"
	// MetaSentAt is when the message was sent to the queue, unix milliseconds.
	MetaSentAt = "sqs_sent_at"
	// Source is the app.MetaSource of messages from the queue.
	Source = "sqs"
)

// metaReceiptHandle carries the receipt handle from the unmarshaler to the forwarder,
// which strips it: it is a credential for the message, not something to log or keep.
const metaReceiptHandle = "_agentwatch_sqs_receipt_handle"

// Subscriber is a message.Subscriber over one SQS queue, built on watermill-aws's SQS
// subscriber; app.StatusChangeFeed in AWS mode.
//
// Each message's payload is the SQS body as sent: an EventBridge envelope when the rule
// targets the queue, an SNS notification whose Message is the envelope when an SNS topic
// does (the raw envelope with raw message delivery); domain.DecodeInput takes all three.
//
// Delivery contract:
//   - Ack deletes the message from the queue (DeleteMessage); the router acks only once
//     the handler returned nil.
//   - While a message waits in its batch or is being handled, its visibility is
//     extended (see the package doc), so the timeout never runs out under it.
//   - Nack leaves it in the queue: it comes back after Config.RetryDelay,
//     and the queue's redrive policy moves it to the dead-letter queue once it was
//     received maxReceiveCount times. Unlike watermill-aws on its own, a nack does not
//     abandon the rest of the received batch: the other messages are handled at once and
//     are not received again, so one failing message never pushes its neighbours toward
//     the dead-letter queue.
//   - Order is not kept; at-least-once delivery, so the handler must be idempotent.
//   - Concurrency: Config.Concurrency workers (watermill-aws's ConsumeWorkers) each
//     long-poll and hand out one message at a time; the router runs its handler for
//     each message it gets, so the workers' messages are handled in parallel. This
//     rather than several router handlers on the queue: a handler's name is a
//     persistent identifier, and one handler with one feed keeps the metrics and the
//     poison path in one place.
//
// Close stops receiving, waits for the workers, closes the output channels, and makes
// the messages received but not acked by then visible again at once. Close is
// idempotent. Subscriber is safe for concurrent use.
type Subscriber struct {
	cfg     Config
	client  *sqs.Client
	inner   *wsqs.Subscriber
	release *releaseSet
	hb      *heartbeat
	metrics *Metrics
	logger  *slog.Logger

	mu        sync.Mutex // orders wg.Add in Subscribe before wg.Wait in Close
	closing   chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ message.Subscriber = (*Subscriber)(nil)

// New returns a subscriber to cfg.QueueURL. metrics may be nil. It makes no AWS call:
// Subscribe checks the queue.
func New(cfg Config, metrics *Metrics, logger *slog.Logger) (*Subscriber, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ac, err := awsConfig(context.Background(), &cfg)
	if err != nil {
		return nil, err
	}
	cfg.AWSConfig = ac
	release := newReleaseSet()
	hb := newHeartbeat(cfg, metrics, logger.With("component", "sqs-heartbeat", "queue", cfg.QueueURL))
	batch, wait, visibility := int32(cfg.BatchSize), int32(cfg.WaitTime/time.Second), int32(cfg.VisibilityTimeout/time.Second)
	inner, err := wsqs.NewSubscriber(wsqs.SubscriberConfig{
		AWSConfig: ac,
		// The release middleware turns the DeleteMessage of a released message into a
		// no-op; see releaseSet. The heartbeat's learn what is received and settled;
		// see heartbeat.
		OptFns:                      append(append([]func(*sqs.Options){}, cfg.OptFns...), release.install, hb.install),
		DoNotCreateQueueIfNotExists: true,
		QueueUrlResolver:            fixedQueue{url: cfg.QueueURL},
		ConsumeWorkers:              cfg.Concurrency,
		GenerateReceiveMessageInput: func(_ context.Context, url wsqs.QueueURL) (*sqs.ReceiveMessageInput, error) {
			return &sqs.ReceiveMessageInput{
				QueueUrl:              aws.String(string(url)),
				MaxNumberOfMessages:   batch,
				WaitTimeSeconds:       wait,
				VisibilityTimeout:     visibility,
				MessageAttributeNames: []string{"All"},
				MessageSystemAttributeNames: []types.MessageSystemAttributeName{
					types.MessageSystemAttributeNameApproximateReceiveCount, types.MessageSystemAttributeNameSentTimestamp},
			}, nil
		},
		Unmarshaler: unmarshaler{},
	}, watermill.NewSlogLogger(logger))
	if err != nil {
		return nil, fmt.Errorf("new SQS subscriber of %s: %w", cfg.QueueURL, err)
	}
	client := sqs.NewFromConfig(ac, cfg.OptFns...)
	hb.start(client)
	return &Subscriber{
		cfg: cfg, client: client, inner: inner, release: release, hb: hb, metrics: metrics,
		logger: logger.With("component", "sqs-subscriber", "queue", cfg.QueueURL), closing: make(chan struct{}),
	}, nil
}

// Subscribe checks that the queue exists and starts Config.Concurrency workers on it.
// topic is ignored (every topic maps to Config.QueueURL). The channel is closed when
// ctx is done or the subscriber closes.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.isClosing() {
		return nil, errors.New("sqs subscriber closed")
	}
	info, err := DescribeQueue(ctx, s.client, s.cfg.QueueURL)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", s.cfg.QueueURL, err)
	}
	if info.DLQArn == "" {
		s.logger.WarnContext(ctx, "the queue has no redrive policy: a message that keeps failing is received again forever; give it a dead-letter queue")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosing() {
		return nil, errors.New("sqs subscriber closed")
	}
	in, err := s.inner.Subscribe(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", s.cfg.QueueURL, err)
	}
	s.logger.InfoContext(ctx, "consuming status changes", "topic", topic, "workers", s.cfg.Concurrency, "batch", s.cfg.BatchSize,
		"visibilityTimeout", s.cfg.VisibilityTimeout, "queueVisibilityTimeout", info.VisibilityTimeout,
		"deadLetterQueue", info.DLQArn, "maxReceiveCount", info.MaxReceiveCount)

	out := make(chan *message.Message)
	var forwarders sync.WaitGroup
	// One forwarder per worker: a worker hands out its next message only after the
	// previous one was acked or nacked, so Concurrency forwarders never keep a worker
	// waiting.
	for range s.cfg.Concurrency {
		forwarders.Add(1)
		go func() {
			defer forwarders.Done()
			for m := range in {
				s.forward(ctx, m, out, info.MaxReceiveCount)
			}
		}()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		forwarders.Wait()
		close(out)
	}()
	return out, nil
}

// forward hands the router a copy of m without the receipt handle and settles m the
// way the router settled the copy: ack deletes; nack releases (see releaseSet).
func (s *Subscriber) forward(ctx context.Context, m *message.Message, out chan<- *message.Message, maxReceiveCount int) {
	receipt := m.Metadata.Get(metaReceiptHandle)
	fwd := message.NewMessage(m.UUID, m.Payload)
	fwd.Metadata = make(message.Metadata, len(m.Metadata))
	for k, v := range m.Metadata {
		if k != metaReceiptHandle {
			fwd.Metadata[k] = v
		}
	}
	fwd.SetContext(m.Context())
	select {
	case out <- fwd:
	case <-s.closing:
		return // not deleted: received again after its visibility timeout
	case <-ctx.Done():
		return
	}
	select {
	case <-fwd.Acked():
		s.metrics.settled(resultDeleted)
		m.Ack()
	case <-fwd.Nacked():
		s.metrics.settled(resultReleased)
		count, _ := strconv.Atoi(fwd.Metadata.Get(MetaReceiveCount))
		if maxReceiveCount > 0 && count >= maxReceiveCount {
			s.metrics.lastReceive()
			s.logger.WarnContext(ctx, "status change failed on its last allowed receive: the queue's redrive policy moves it to the dead-letter queue (agentwatch dlq)",
				"messageId", fwd.Metadata.Get(app.MetaPosition), "receiveCount", count, "maxReceiveCount", maxReceiveCount)
		} else {
			s.logger.DebugContext(ctx, "status change released for redelivery after its visibility timeout",
				"messageId", fwd.Metadata.Get(app.MetaPosition), "receiveCount", count, "maxReceiveCount", maxReceiveCount)
		}
		if receipt == "" {
			m.Nack() // cannot release without a receipt handle: watermill-aws's nack
			return
		}
		s.hb.retryAfter(receipt, s.cfg.RetryDelay)
		s.release.add(receipt)
		m.Ack()
	case <-s.closing:
	case <-ctx.Done():
	}
}

// Close stops the workers and waits for them; see Subscriber.
func (s *Subscriber) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.mu.Lock()
		close(s.closing)
		s.mu.Unlock()
		err = s.inner.Close()
		s.wg.Wait()
		s.hb.close()
	})
	if err != nil {
		return fmt.Errorf("close SQS subscriber of %s: %w", s.cfg.QueueURL, err)
	}
	return nil
}

func (s *Subscriber) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// fixedQueue resolves every topic to one queue URL.
type fixedQueue struct{ url string }

func (q fixedQueue) ResolveQueueUrl(_ context.Context, _ wsqs.ResolveQueueUrlParams) (wsqs.QueueUrlResolverResult, error) {
	u := wsqs.QueueURL(q.url)
	exists := true // Subscribe checked it
	return wsqs.QueueUrlResolverResult{QueueName: wsqs.QueueName(queueName(q.url)), QueueURL: &u, Exists: &exists}, nil
}

// queueName is the last path element of a queue URL.
func queueName(url string) string {
	for i := len(url) - 1; i >= 0; i-- {
		if url[i] == '/' {
			return url[i+1:]
		}
	}
	return url
}

// unmarshaler is watermill-aws's default (payload = body, metadata = message
// attributes) plus the metadata Subscriber documents.
type unmarshaler struct {
	wsqs.DefaultMarshalerUnmarshaler
}

func (u unmarshaler) Unmarshal(m *types.Message) (*message.Message, error) {
	msg, err := u.DefaultMarshalerUnmarshaler.Unmarshal(m)
	if err != nil {
		return nil, err
	}
	id := aws.ToString(m.MessageId)
	if msg.UUID == "" {
		msg.UUID = id
	}
	msg.Metadata.Set(app.MetaSource, Source)
	msg.Metadata.Set(app.MetaPosition, id)
	msg.Metadata.Set(MetaReceiveCount, m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	msg.Metadata.Set(MetaSentAt, m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)])
	msg.Metadata.Set(metaReceiptHandle, aws.ToString(m.ReceiptHandle))
	return msg, nil
}

// releaseSet holds the receipt handles of nacked messages whose DeleteMessage must not
// happen.
//
// watermill-aws v1.0.3 handles a received batch in order and, on a nack, abandons the
// rest of it (for FIFO order): those messages stay invisible until their visibility
// timeout and their receive count has already gone up, so behind a message that keeps
// failing they would reach maxReceiveCount and the dead-letter queue without ever having
// failed. Subscriber therefore answers a nack by acking watermill-aws's message after
// putting its receipt handle here, and a middleware on the SQS client turns that
// message's DeleteMessage into a no-op: the message stays in the queue exactly as after
// a nack, and the worker goes on with the batch.
type releaseSet struct {
	mu      sync.Mutex
	handles map[string]struct{}
}

func newReleaseSet() *releaseSet { return &releaseSet{handles: map[string]struct{}{}} }

func (r *releaseSet) add(handle string) {
	r.mu.Lock()
	r.handles[handle] = struct{}{}
	r.mu.Unlock()
}

// take removes handle and reports whether it was there.
func (r *releaseSet) take(handle string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.handles[handle]
	delete(r.handles, handle)
	return ok
}

// install adds the middleware that skips the DeleteMessage of released messages.
func (r *releaseSet) install(o *sqs.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("agentwatchReleaseNacked",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				if d, ok := in.Parameters.(*sqs.DeleteMessageInput); ok && d.ReceiptHandle != nil && r.take(*d.ReceiptHandle) {
					return middleware.InitializeOutput{Result: &sqs.DeleteMessageOutput{}}, middleware.Metadata{}, nil
				}
				return next.HandleInitialize(ctx, in)
			}), middleware.Before)
	})
}
