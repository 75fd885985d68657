package sqlite

import (
	"errors"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/agentwatch/agentwatch/domain"
)

// JournalPublisher is a watermill message.Publisher that appends to the journal: each
// message's payload is a journal item in plain JSON (domain.DecodeJournalItemJSON), the
// form TailSubscriber delivers. The topic is ignored (the journal is one feed).
//
// Publish appends all the messages of one call in one transaction, idempotently: an item
// that is already in the journal is not an error. A payload that is not a valid journal
// item fails the call (matching domain.ErrInvalid) before anything is written. The
// first message's context bounds the append.
type JournalPublisher struct {
	journal *JournalStore

	mu     sync.RWMutex
	closed bool
}

var _ message.Publisher = (*JournalPublisher)(nil)

// NewJournalPublisher returns a publisher appending to db's journal.
func NewJournalPublisher(db *DB) *JournalPublisher {
	return &JournalPublisher{journal: NewJournalStore(db)}
}

// Publish appends the messages' items to the journal.
func (p *JournalPublisher) Publish(topic string, messages ...*message.Message) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return errors.New("publish: journal publisher is closed")
	}
	if len(messages) == 0 {
		return nil
	}
	events := make([]domain.Event, len(messages))
	for i, m := range messages {
		ev, err := domain.DecodeJournalItemJSON(m.Payload)
		if err != nil {
			return fmt.Errorf("publish message %s to %s: %w", m.UUID, topic, err)
		}
		events[i] = ev
	}
	if _, err := p.journal.Append(messages[0].Context(), events); err != nil {
		return fmt.Errorf("publish %d messages to %s: %w", len(messages), topic, err)
	}
	return nil
}

// Close makes later Publish calls fail. It is idempotent.
func (p *JournalPublisher) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	return nil
}
