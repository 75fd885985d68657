package sqlite

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// Metadata keys of the messages TailSubscriber produces.
const (
	// MetadataPosition is the row's journal position (seq), a decimal string: what a
	// consumer stores as its checkpoint.
	MetadataPosition = "position"
	// MetadataPK and MetadataSK are the journal item's keys.
	MetadataPK = "pk"
	MetadataSK = "sk"
)

// TailSubscriberConfig configures a TailSubscriber.
type TailSubscriberConfig struct {
	// CheckpointName names the checkpoint (checkpoints table) after whose position each
	// Subscribe starts. The subscriber only reads it: the consumer writes it, in the
	// same commit as its effects (ReadModelStore.Commit with app.Batch.Checkpoint).
	// Empty: start as StartFromEnd says.
	CheckpointName string
	// StartFromEnd starts a subscription that finds no checkpoint after the journal's
	// last row at the time of Subscribe, instead of at its beginning (for consumers that
	// only care about what happens next, such as live views).
	StartFromEnd bool
	// PollInterval is how often the subscriber looks for rows that other processes
	// appended. Appends through this process wake it at once. Default 100ms.
	PollInterval time.Duration
	// BatchSize is how many rows one read fetches, and so the most records a page
	// holds. Default 256 (rows), 1000 (pages).
	BatchSize int
	// Pages delivers each read as ONE message, an app.JournalPage of up to BatchSize
	// records (app.NewPageMessage), instead of one message per row: the projector then
	// folds and commits the whole read at once. A page is whatever was appended while
	// the previous page was being handled — under load pages fill up, at low load they
	// hold one row and go out at once — so no linger time is added to latency.
	Pages bool
	// NackBackoff is how long the subscriber waits before redelivering a nacked message.
	// Default 100ms.
	NackBackoff time.Duration
	// ErrorBackoff is how long the subscriber waits after a failed read before trying
	// again. Default 1s.
	ErrorBackoff time.Duration
}

// SetDefaults fills the zero fields with their defaults.
func (c *TailSubscriberConfig) SetDefaults() {
	if c.PollInterval == 0 {
		c.PollInterval = 100 * time.Millisecond
	}
	if c.BatchSize == 0 {
		c.BatchSize = 256
		if c.Pages {
			c.BatchSize = 1000
		}
	}
	if c.NackBackoff == 0 {
		c.NackBackoff = 100 * time.Millisecond
	}
	if c.ErrorBackoff == 0 {
		c.ErrorBackoff = time.Second
	}
}

// Validate reports every invalid field.
func (c *TailSubscriberConfig) Validate() error {
	var errs []error
	if c.PollInterval <= 0 {
		errs = append(errs, errors.New("PollInterval must be positive"))
	}
	if c.BatchSize <= 0 {
		errs = append(errs, errors.New("BatchSize must be positive"))
	}
	if c.NackBackoff < 0 {
		errs = append(errs, errors.New("NackBackoff must not be negative"))
	}
	if c.ErrorBackoff <= 0 {
		errs = append(errs, errors.New("ErrorBackoff must be positive"))
	}
	return errors.Join(errs...)
}

// tailRow is one row of a tailed feed, ready to become a message.
type tailRow struct {
	seq int64
	// appendedMs is when the row was appended (unix ms), 0 when unknown.
	appendedMs int64
	uuid       string
	payload    []byte
	metadata   message.Metadata
}

// tailSource is the feed a TailSubscriber reads: rows after a position, in order.
type tailSource interface {
	readAfter(ctx context.Context, topic string, after int64, limit int) ([]tailRow, error)
	lastPosition(ctx context.Context, topic string) (int64, error)
}

// TailSubscriber is a watermill message.Subscriber over the journal: one message per
// journal row, in sequence order — the embedded stand-in for DynamoDB Streams. The
// journal is a single feed; the topic passed to Subscribe only names the subscription in
// logs.
//
// Each message carries the journal item's JSON (domain.JournalItem) as payload, the
// row's position under MetadataPosition, its keys under MetadataPK and MetadataSK, and
// its append time under app.MetaAppendedAt; its UUID is derived from the keys, so a
// redelivered item keeps its UUID. With Config.Pages, each message is instead a page of
// every row one read returned (app.JournalPage), with the last row's position under
// MetadataPosition.
//
// Delivery is at least once and in order: the next message is sent only after the
// previous one was acked; a nacked message is sent again after NackBackoff. Positions
// are not stored on Ack: each Subscribe starts after the checkpoint that the consumer
// committed, so messages acked after the last checkpoint are delivered again.
//
// Subscribe may be called several times, concurrently; each subscription reads on its
// own. Close ends every subscription and waits for them: their output channels are
// closed (by the goroutines that fill them), the contexts of messages in flight are
// canceled. Canceling the ctx given to Subscribe ends that subscription alike.
type TailSubscriber struct {
	db     *DB
	cfg    TailSubscriberConfig
	logger watermill.LoggerAdapter
	source tailSource

	mu      sync.Mutex
	closed  bool
	closing chan struct{}
	wg      sync.WaitGroup
}

var _ message.Subscriber = (*TailSubscriber)(nil)

// NewTailSubscriber returns a subscriber tailing db's journal. cfg's zero fields take
// their defaults.
func NewTailSubscriber(db *DB, cfg TailSubscriberConfig, logger watermill.LoggerAdapter) (*TailSubscriber, error) {
	return newTailSubscriber(db, cfg, logger, journalSource{db: db})
}

func newTailSubscriber(db *DB, cfg TailSubscriberConfig, logger watermill.LoggerAdapter, src tailSource) (*TailSubscriber, error) {
	if db == nil {
		return nil, errors.New("new tail subscriber: nil DB")
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new tail subscriber: invalid config: %w", err)
	}
	if logger == nil {
		logger = watermill.NopLogger{}
	}
	return &TailSubscriber{
		db:      db,
		cfg:     cfg,
		logger:  logger.With(watermill.LogFields{"subscriber": "sqlite_tail", "checkpoint": cfg.CheckpointName}),
		source:  src,
		closing: make(chan struct{}),
	}, nil
}

// Subscribe starts a subscription after the configured checkpoint and returns its
// output channel. It fails once the subscriber is closed.
func (s *TailSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("subscribe: tail subscriber is closed")
	}
	start, err := s.startPosition(ctx, topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", topic, err)
	}
	out := make(chan *message.Message)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(out)
		s.run(ctx, topic, start, out)
	}()
	return out, nil
}

func (s *TailSubscriber) startPosition(ctx context.Context, topic string) (int64, error) {
	if s.cfg.CheckpointName != "" {
		pos, err := getCheckpoint(ctx, s.db.read, s.cfg.CheckpointName)
		if err != nil {
			return 0, err
		}
		if pos != "" {
			seq, err := strconv.ParseInt(pos, 10, 64)
			if err != nil || seq < 0 {
				return 0, fmt.Errorf("checkpoint %s holds %q, not a journal position: %w", s.cfg.CheckpointName, pos, domain.ErrInvalid)
			}
			return seq, nil
		}
	}
	if s.cfg.StartFromEnd {
		return s.source.lastPosition(ctx, topic)
	}
	return 0, nil
}

// run reads and delivers until ctx is done or the subscriber closes.
func (s *TailSubscriber) run(ctx context.Context, topic string, pos int64, out chan<- *message.Message) {
	logger := s.logger.With(watermill.LogFields{"topic": topic})
	logger.Debug("tail subscription started", watermill.LogFields{"after": pos})
	defer logger.Debug("tail subscription ended", nil)
	poll := time.NewTimer(s.cfg.PollInterval)
	defer poll.Stop()
	for {
		// Take the wake-up channel before reading, so that an append between the read
		// and the wait is not missed.
		appended := s.db.journalAppended()
		rows, err := s.source.readAfter(ctx, topic, pos, s.cfg.BatchSize)
		if err != nil {
			if ctx.Err() != nil || s.isClosing() {
				return
			}
			logger.Error("tail read failed; retrying", err, watermill.LogFields{"after": pos})
			if !s.sleep(ctx, s.cfg.ErrorBackoff) {
				return
			}
			continue
		}
		if s.cfg.Pages && len(rows) > 0 {
			page, err := pageOf(rows)
			if err != nil {
				logger.Error("tail page not built; retrying", err, watermill.LogFields{"after": pos})
				if !s.sleep(ctx, s.cfg.ErrorBackoff) {
					return
				}
				continue
			}
			if !s.deliver(ctx, page, out) {
				return
			}
			pos = rows[len(rows)-1].seq
		}
		for i := 0; !s.cfg.Pages && i < len(rows); i++ {
			if !s.deliver(ctx, &rows[i], out) {
				return
			}
			pos = rows[i].seq
		}
		if len(rows) == s.cfg.BatchSize {
			continue
		}
		poll.Reset(s.cfg.PollInterval)
		select {
		case <-appended:
		case <-poll.C:
		case <-s.closing:
			return
		case <-ctx.Done():
			return
		}
	}
}

// pageOf makes one page of rows: a row whose payload is its journal item. The page's
// UUID names its first and last positions, so a redelivered page keeps it.
func pageOf(rows []tailRow) (*tailRow, error) {
	records := make([]app.JournalRecord, len(rows))
	for i := range rows {
		records[i] = app.JournalRecord{Position: strconv.FormatInt(rows[i].seq, 10), AppendedAtMs: rows[i].appendedMs, Item: rows[i].payload}
	}
	first, last := rows[0].seq, rows[len(rows)-1].seq
	msg, err := app.NewPageMessage(fmt.Sprintf("journal/%d-%d", first, last), records,
		message.Metadata{MetadataPosition: strconv.FormatInt(last, 10), app.MetaSource: "journal"})
	if err != nil {
		return nil, err
	}
	return &tailRow{seq: last, uuid: msg.UUID, payload: msg.Payload, metadata: msg.Metadata}, nil
}

// deliver sends one row until it is acked; false when the subscription must end.
func (s *TailSubscriber) deliver(ctx context.Context, r *tailRow, out chan<- *message.Message) bool {
	for {
		msg := message.NewMessage(r.uuid, r.payload)
		msg.Metadata = make(message.Metadata, len(r.metadata))
		for k, v := range r.metadata {
			msg.Metadata[k] = v
		}
		msgCtx, cancel := context.WithCancel(ctx)
		msg.SetContext(msgCtx)
		select {
		case out <- msg:
		case <-s.closing:
			cancel()
			return false
		case <-ctx.Done():
			cancel()
			return false
		}
		select {
		case <-msg.Acked():
			cancel()
			return true
		case <-msg.Nacked():
			cancel()
			if !s.sleep(ctx, s.cfg.NackBackoff) {
				return false
			}
		case <-s.closing:
			cancel()
			return false
		case <-ctx.Done():
			cancel()
			return false
		}
	}
}

// sleep waits d; false when the subscription must end instead.
func (s *TailSubscriber) sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil && !s.isClosing()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-s.closing:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *TailSubscriber) isClosing() bool {
	select {
	case <-s.closing:
		return true
	default:
		return false
	}
}

// Close ends every subscription and waits until their output channels are closed. It
// is idempotent.
func (s *TailSubscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.closing)
	s.mu.Unlock()
	s.wg.Wait()
	s.logger.Debug("tail subscriber closed", nil)
	return nil
}

// journalSource feeds a TailSubscriber from the journal table.
type journalSource struct {
	db *DB
}

const tailSQL = `SELECT seq, pk, sk, coalesce(appended_ms, 0), ` + scanColumns + ` FROM journal WHERE seq > ? ORDER BY seq LIMIT ?`

func (j journalSource) readAfter(ctx context.Context, _ string, after int64, limit int) ([]tailRow, error) {
	st, err := j.db.stmt(ctx, j.db.read, tailSQL)
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, after, limit)
	if err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", after, err)
	}
	defer rows.Close()
	var out []tailRow
	var sc rowScanner
	for rows.Next() {
		var r tailRow
		var pk, sk string
		var rec []byte
		if err := rows.Scan(&r.seq, &pk, &sk, &r.appendedMs, &rec); err != nil {
			return nil, fmt.Errorf("read journal after %d: %w", after, err)
		}
		// The payload is the item in JSON, as the journal's other feeds carry it.
		var ev domain.Event
		if err := sc.build(rec, &ev); err != nil {
			return nil, fmt.Errorf("read journal after %d: %w", after, err)
		}
		item := ev.Item()
		var err error
		if r.payload, err = json.Marshal(&item); err != nil {
			return nil, fmt.Errorf("read journal after %d: encode %s/%s: %w", after, pk, sk, err)
		}
		r.uuid = pk + "/" + sk
		r.metadata = message.Metadata{MetadataPosition: strconv.FormatInt(r.seq, 10), MetadataPK: pk, MetadataSK: sk}
		if r.appendedMs > 0 {
			r.metadata[app.MetaAppendedAt] = strconv.FormatInt(r.appendedMs, 10)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read journal after %d: %w", after, err)
	}
	return out, nil
}

func (j journalSource) lastPosition(ctx context.Context, _ string) (int64, error) {
	return NewJournalStore(j.db).MaxSeq(ctx)
}
