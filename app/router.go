package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/metrics"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/domain"
)

// Handler names are persistent identifiers (consumer groups, checkpoints): never
// rename them.
const (
	HandlerIngest  = "ingest_execution_events"
	HandlerProject = "project_journal"
)

// Topics of the router.
const (
	// TopicJournal carries journal items (one per message) from the journal feed.
	TopicJournal = "journal"
	// TopicStatusChanges carries ingest objects (status changes) from the queue.
	TopicStatusChanges = "sfn-status-changes"
	// TopicPoison receives messages that failed for good.
	TopicPoison = "poison"
)

// Message metadata keys that journal feeds set.
const (
	// MetaPosition is the message's position in its feed.
	MetaPosition = "position"
	// MetaAppendedAt is when the item was appended (unix ms), for the lag metric.
	MetaAppendedAt = "appended_at"
	// MetaSource names the feed.
	MetaSource = "source"
)

// JournalFeed is the subscriber that delivers journal items: the SQLite tail in
// embedded mode, the DynamoDB Streams subscriber in AWS mode.
type JournalFeed struct {
	message.Subscriber
	// CheckpointName, for a single-sequence feed, names the checkpoint that each
	// message's MetaPosition is stored under, in the same commit as its projection
	// (exactly-once). Empty for feeds that checkpoint themselves on Ack (streams).
	CheckpointName string
}

// StatusChangeFeed is the subscriber that delivers Step Functions status changes: a
// GoChannel in embedded mode, the SQS queue in AWS mode. Its Subscriber may be nil.
type StatusChangeFeed struct {
	message.Subscriber
	// Redelivers says that the feed redelivers a nacked message later and bounds the
	// attempts itself (SQS: the visibility timeout, then the redrive policy moves it to
	// the dead-letter queue). A status change that still fails after the router's
	// retries, for any reason but malformed input, is then nacked instead of being sent
	// to the poison queue.
	Redelivers bool
}

// errRedeliver marks a handler error that is left to the feed's redelivery rather than
// to the poison queue.
var errRedeliver = errors.New("left to the feed to redeliver")

// RouterConfig configures the router's handlers.
type RouterConfig struct {
	// MaxRetries of a failing message before it goes to the poison queue.
	MaxRetries int
	// RetryInitialInterval is the first backoff between retries.
	RetryInitialInterval time.Duration
	// RetryMaxInterval caps the backoff.
	RetryMaxInterval time.Duration
	// CloseTimeout bounds how long closing the router waits for in-flight messages;
	// it must leave the rest of a graceful shutdown (final checkpoints, lease
	// release) time within the process's shutdown timeout.
	CloseTimeout time.Duration
}

// SetDefaults fills zero fields.
func (c *RouterConfig) SetDefaults() {
	if c.MaxRetries == 0 {
		c.MaxRetries = 5
	}
	if c.RetryInitialInterval == 0 {
		c.RetryInitialInterval = 50 * time.Millisecond
	}
	if c.RetryMaxInterval == 0 {
		c.RetryMaxInterval = 2 * time.Second
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = 20 * time.Second
	}
}

// NewRouter builds the Watermill router with the two handlers, behind Recoverer,
// bounded Retry (not for malformed input, which can never succeed) and a poison queue
// that publishes to poison. reg, when set, gets Watermill's router metrics.
func NewRouter(cfg RouterConfig, journal JournalFeed, statusChanges StatusChangeFeed, poison message.Publisher,
	projector *Projector, ingester *Ingester, reg prometheus.Registerer, logger *slog.Logger) (*message.Router, error) {
	cfg.SetDefaults()
	wlog := watermill.NewSlogLogger(logger)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: cfg.CloseTimeout}, wlog)
	if err != nil {
		return nil, fmt.Errorf("new router: %w", err)
	}
	pq, err := middleware.PoisonQueueWithFilter(poison, TopicPoison, func(err error) bool {
		return !errors.Is(err, errRedeliver)
	})
	if err != nil {
		return nil, fmt.Errorf("poison queue: %w", err)
	}
	retry := middleware.Retry{
		MaxRetries:      cfg.MaxRetries,
		InitialInterval: cfg.RetryInitialInterval,
		MaxInterval:     cfg.RetryMaxInterval,
		Multiplier:      2,
		Logger:          wlog,
		ShouldRetry: func(p middleware.RetryParams) bool {
			return !errors.Is(p.Err, domain.ErrInvalid)
		},
	}
	// Outermost first: poison after the retries, retries around the recoverer.
	r.AddMiddleware(pq, retry.Middleware, middleware.Recoverer)
	if reg != nil {
		metrics.NewPrometheusMetricsBuilder(reg, "agentwatch", "router").AddPrometheusRouterMetrics(r)
	}
	if journal.Subscriber != nil {
		r.AddConsumerHandler(HandlerProject, TopicJournal, journal.Subscriber, projectHandler(projector, poison, journal.CheckpointName))
	}
	if statusChanges.Subscriber != nil {
		r.AddConsumerHandler(HandlerIngest, TopicStatusChanges, statusChanges.Subscriber, ingestHandler(ingester, statusChanges.Redelivers))
	}
	return r, nil
}

// projectHandler projects a page of journal items (app.JournalPage, MetaPage) or one
// journal item. A page is folded and committed at once; a record in it that cannot be
// projected — its item malformed, or its session refused by the store as invalid — is
// published to poison on its own, with the reason, and the rest commits. A page or item
// that fails for any other reason (the store unreachable, throttled) is retried by the
// router and then left to the feed to redeliver: it is never quarantined for a failure
// that is not its own.
func projectHandler(p *Projector, poison message.Publisher, checkpoint string) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		var cp *Checkpoint
		if pos := msg.Metadata.Get(MetaPosition); checkpoint != "" && pos != "" {
			cp = &Checkpoint{Name: checkpoint, Position: pos}
		}
		if msg.Metadata.Get(MetaPage) != "1" {
			ev, err := domain.DecodeJournalItemJSON(msg.Payload)
			if err != nil {
				return fmt.Errorf("decode journal item at %s: %w", msg.Metadata.Get(MetaPosition), err)
			}
			if err := p.Project(msg.Context(), []domain.Event{ev}, cp); err != nil {
				return redeliverUnlessInvalid(err)
			}
			observeLag(p.metrics, msg.Metadata.Get(MetaAppendedAt))
			return nil
		}
		page, err := DecodePage(msg.Payload)
		if err != nil {
			return err
		}
		events := make([]domain.Event, 0, len(page.Records))
		positions := make(map[string]string, len(page.Records)) // event key -> position
		for i := range page.Records {
			r := &page.Records[i]
			ev, err := domain.DecodeJournalItemJSON(r.Item)
			if err != nil {
				if perr := publishPoison(poison, msg, r.Position, r.Item, fmt.Errorf("decode journal item at %s: %w", r.Position, err)); perr != nil {
					return perr
				}
				continue
			}
			positions[ev.Key()] = r.Position
			events = append(events, ev)
		}
		err = p.ProjectIsolating(msg.Context(), events, cp, func(evs []domain.Event, reason error) error {
			for i := range evs {
				item, merr := json.Marshal(evs[i].Item())
				if merr != nil {
					return fmt.Errorf("encode poison journal item: %w", merr)
				}
				pos := positions[evs[i].Key()]
				if err := publishPoison(poison, msg, pos, item, fmt.Errorf("project journal item at %s: %w", pos, reason)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return redeliverUnlessInvalid(err)
		}
		for i := range page.Records {
			if at := page.Records[i].AppendedAtMs; at > 0 {
				observeLag(p.metrics, strconv.FormatInt(at, 10))
			}
		}
		return nil
	}
}

// redeliverUnlessInvalid marks a projection failure for redelivery by the feed: only
// malformed input (domain.ErrInvalid) may go to the poison queue.
func redeliverUnlessInvalid(err error) error {
	if errors.Is(err, domain.ErrInvalid) {
		return err
	}
	return fmt.Errorf("%w: %w", errRedeliver, err)
}

// publishPoison sets one record of a page aside through the poison publisher, with the
// reason and position the quarantine keeps.
func publishPoison(poison message.Publisher, page *message.Message, position string, payload []byte, reason error) error {
	m := message.NewMessage(page.UUID+"/"+position, payload)
	m.Metadata = message.Metadata{
		MetaPosition:                    position,
		MetaSource:                      page.Metadata.Get(MetaSource),
		middleware.ReasonForPoisonedKey: reason.Error(),
		middleware.PoisonedHandlerKey:   HandlerProject,
		middleware.PoisonedTopicKey:     TopicJournal,
	}
	m.SetContext(page.Context())
	if err := poison.Publish(TopicPoison, m); err != nil {
		return fmt.Errorf("quarantine journal item at %s: %w", position, err)
	}
	return nil
}

func observeLag(m *Metrics, appendedAtMs string) {
	if m == nil {
		return
	}
	if at, err := strconv.ParseInt(appendedAtMs, 10, 64); err == nil {
		m.LiveLag.Observe(time.Since(time.UnixMilli(at)).Seconds())
	}
}

// ingestHandler appends one status change (or journal item) to the journal. The
// message is acked only after the append succeeded or found the event already there.
// With redelivers, a failure other than malformed input is marked errRedeliver.
func ingestHandler(in *Ingester, redelivers bool) message.NoPublishHandlerFunc {
	return func(msg *message.Message) error {
		_, err := in.IngestObject(msg.Context(), msg.Payload)
		if err != nil && redelivers && !errors.Is(err, domain.ErrInvalid) {
			return fmt.Errorf("%w: %w", errRedeliver, err)
		}
		return err
	}
}

// QuarantinePublisher is a message.Publisher that sets poison messages aside in the
// quarantine, with the reason the poison middleware recorded.
type QuarantinePublisher struct {
	q       Quarantine
	metrics *Metrics
}

// NewQuarantinePublisher returns a publisher into q.
func NewQuarantinePublisher(q Quarantine, metrics *Metrics) *QuarantinePublisher {
	return &QuarantinePublisher{q: q, metrics: metrics}
}

// Publish quarantines every message.
func (p *QuarantinePublisher) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		source := m.Metadata.Get(MetaSource)
		if source == "" {
			source = m.Metadata.Get(middleware.PoisonedHandlerKey)
		}
		key := m.Metadata.Get(MetaPosition)
		if key == "" {
			key = m.UUID
		}
		q := Quarantined{Source: source, Key: key, Reason: m.Metadata.Get(middleware.ReasonForPoisonedKey),
			Payload: string(m.Payload), At: time.Now().UTC()}
		ctx := m.Context()
		if ctx == nil {
			ctx = context.Background()
		}
		if err := p.q.Quarantine(ctx, q); err != nil {
			return fmt.Errorf("quarantine message %s: %w", m.UUID, err)
		}
		p.metrics.quarantined(source)
	}
	return nil
}

// Close does nothing.
func (p *QuarantinePublisher) Close() error { return nil }
