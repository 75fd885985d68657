package app

import (
	"context"
	"fmt"

	"github.com/agentwatch/agentwatch/domain"
)

// PositionedEvent is a journal event with its position in a single-sequence feed.
type PositionedEvent struct {
	Position string
	Event    domain.Event
}

// JournalTail reads a single-sequence journal feed (the SQLite journal) in order.
type JournalTail interface {
	// ReadAfter returns up to limit events after position ("" = from the start).
	ReadAfter(ctx context.Context, position string, limit int) ([]PositionedEvent, error)
}

// CatchUp projects every journal event after the checkpoint name, in batches, storing
// the checkpoint in each commit. It returns how many events it projected. Running it
// beside a live worker is safe: session versions make every effect exactly-once, and a
// checkpoint that moves back only costs re-reading events that change nothing.
func (p *Projector) CatchUp(ctx context.Context, tail JournalTail, checkpoints CheckpointStore, name string, batch int) (int, error) {
	if batch <= 0 {
		batch = 1000
	}
	pos, err := checkpoints.GetCheckpoint(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("read checkpoint %s: %w", name, err)
	}
	total := 0
	for {
		evs, err := tail.ReadAfter(ctx, pos, batch)
		if err != nil {
			return total, fmt.Errorf("read journal after %q: %w", pos, err)
		}
		if len(evs) == 0 {
			return total, nil
		}
		events := make([]domain.Event, len(evs))
		for i := range evs {
			events[i] = evs[i].Event
		}
		pos = evs[len(evs)-1].Position
		if err := p.Project(ctx, events, &Checkpoint{Name: name, Position: pos}); err != nil {
			return total, err
		}
		total += len(evs)
	}
}
