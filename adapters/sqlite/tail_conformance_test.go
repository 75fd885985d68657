package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	"github.com/stretchr/testify/require"
)

// The journal cannot carry the conformance suite's messages: they have arbitrary
// payloads ("x", "42"), their own UUIDs and metadata, and one topic per test, while a
// journal row is a journal item with its keys. So the suite runs the TailSubscriber's
// delivery machinery (order, ack/nack, redelivery, close, ctx) over a raw message log
// in the same database, read through the same tailSource seam as the journal; the
// journal-specific behaviour is tested in tail_subscriber_test.go.

const rawLogDDL = `CREATE TABLE IF NOT EXISTS tail_test_messages (
	seq      INTEGER PRIMARY KEY AUTOINCREMENT,
	topic    TEXT NOT NULL,
	uuid     TEXT NOT NULL,
	metadata TEXT NOT NULL,
	payload  BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS tail_test_messages_topic ON tail_test_messages (topic, seq)`

// rawLog is a message log table standing in for the journal.
type rawLog struct{ db *DB }

func (l rawLog) readAfter(ctx context.Context, topic string, after int64, limit int) ([]tailRow, error) {
	rows, err := l.db.read.QueryContext(ctx, `SELECT seq, uuid, metadata, payload FROM tail_test_messages
		WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?`, topic, after, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []tailRow
	for rows.Next() {
		var r tailRow
		var md []byte
		if err := rows.Scan(&r.seq, &r.uuid, &md, &r.payload); err != nil {
			return nil, err
		}
		if err := json.Unmarshal(md, &r.metadata); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

func (l rawLog) lastPosition(ctx context.Context, topic string) (int64, error) {
	var seq int64
	err := l.db.read.QueryRowContext(ctx, `SELECT coalesce(max(seq), 0) FROM tail_test_messages WHERE topic = ?`, topic).Scan(&seq)
	return seq, err
}

// rawPublisher appends messages to the raw log and wakes tail subscribers, as
// JournalStore.Append does.
type rawPublisher struct {
	db     *DB
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
	err := p.db.writeTx(context.Background(), func(tx *sql.Tx) error {
		for _, m := range msgs {
			md, err := json.Marshal(m.Metadata)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO tail_test_messages (topic, uuid, metadata, payload) VALUES (?, ?, ?, ?)`,
				topic, m.UUID, md, []byte(m.Payload)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	p.db.notify.broadcast()
	return nil
}

func (p *rawPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}

func TestTailSubscriberConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite takes a while")
	}
	db, err := Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	require.NoError(t, db.writeTx(t.Context(), func(tx *sql.Tx) error { return execScript(t.Context(), tx, rawLogDDL) }))

	features := tests.Features{
		ConsumerGroups:                   false,
		ExactlyOnceDelivery:              false,
		GuaranteedOrder:                  true,
		Persistent:                       true,
		NewSubscriberReceivesOldMessages: true,
	}
	constructor := func(t *testing.T) (message.Publisher, message.Subscriber) {
		// A short nack backoff: TestContinueAfterErrors nacks 300 times.
		cfg := TailSubscriberConfig{NackBackoff: 5 * time.Millisecond}
		sub, err := newTailSubscriber(db, cfg, watermill.NopLogger{}, rawLog{db: db})
		require.NoError(t, err)
		return &rawPublisher{db: db}, sub
	}
	tests.TestPubSub(t, features, constructor, nil)
}
