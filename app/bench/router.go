package bench

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// Router pushes evs one message at a time through a Watermill GoChannel router into
// agentwatch's own projector, writing generation gen (created here), and returns the
// time it took: the per-message path the batched rebuild is compared with.
func Router(ctx context.Context, reg *projections.Registry, gens app.GenerationStore, gen int, evs []domain.Event) (time.Duration, error) {
	if err := gens.CreateGeneration(ctx, gen, ""); err != nil {
		return 0, err
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	gc := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: int64(len(evs)), Persistent: true}, watermill.NopLogger{})
	defer gc.Close()
	var done atomic.Int64
	proj := app.NewProjector(counting{gens.ProjectionStoreOf(gen), &done}, reg, quiet, nil)
	r, err := app.NewRouter(app.RouterConfig{}, app.JournalFeed{Subscriber: gc}, app.StatusChangeFeed{}, discardPublisher{}, proj, nil, nil, quiet)
	if err != nil {
		return 0, err
	}
	go func() { _ = r.Run(ctx) }()
	<-r.Running()
	defer r.Close()
	start := time.Now()
	for i := range evs {
		b, err := json.Marshal(evs[i].Item())
		if err != nil {
			return 0, err
		}
		if err := gc.Publish(app.TopicJournal, message.NewMessage(watermill.NewUUID(), b)); err != nil {
			return 0, err
		}
	}
	for done.Load() < int64(len(evs)) {
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return time.Since(start), nil
}

// counting counts the events committed through a projection store.
type counting struct {
	app.ProjectionStore
	n *atomic.Int64
}

func (c counting) Commit(ctx context.Context, b app.Batch) error {
	if err := c.ProjectionStore.Commit(ctx, b); err != nil {
		return err
	}
	c.n.Add(1) // one successful commit per Project call, i.e. per message
	return nil
}

// discardPublisher drops poison messages (the benchmark's events are all valid).
type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) Close() error                              { return nil }
