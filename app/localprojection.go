package app

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/fx"
)

// LocalProjection projects, in embedded mode, what a command appended to the journal
// (ingest, backfill), so that listings show the effect whether or not a worker runs:
// it catches the worker's checkpoint up with the journal's tail. Running it beside a
// worker is safe (see Projector.CatchUp). Where the journal has no tail (DynamoDB: the
// worker projects from the stream), it does nothing.
type LocalProjection struct {
	projector   *Projector
	tail        JournalTail
	checkpoints CheckpointStore
	checkpoint  string
}

// NewLocalProjection returns a local projection onto the checkpoint name. tail may be
// nil (nothing to do).
func NewLocalProjection(projector *Projector, tail JournalTail, checkpoints CheckpointStore, name string) *LocalProjection {
	return &LocalProjection{projector: projector, tail: tail, checkpoints: checkpoints, checkpoint: name}
}

// localProjectionBatch is how many events one catch-up commit carries.
const localProjectionBatch = 2000

// CatchUp projects the journal events after the checkpoint and returns how many it
// projected.
func (l *LocalProjection) CatchUp(ctx context.Context) (int, error) {
	if l == nil || l.tail == nil {
		return 0, nil
	}
	return l.projector.CatchUp(ctx, l.tail, l.checkpoints, l.checkpoint, localProjectionBatch)
}

// WaitOut is what a command that ingests does while the projector is too far behind
// (a *BackpressureError; see Ingester.IngestReader): it projects the backlog itself, or,
// with nothing to project here (another process projects), sleeps as the refusal says.
func (l *LocalProjection) WaitOut(ctx context.Context, refused *BackpressureError) error {
	n, err := l.CatchUp(ctx)
	if err != nil {
		return fmt.Errorf("project the backlog: %w", err)
	}
	if n > 0 {
		return nil
	}
	t := time.NewTimer(refused.RetryAfter)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// LocalProjectionParams are the local projection's dependencies in the fx graph.
type LocalProjectionParams struct {
	fx.In
	Config      Config
	Projector   *Projector
	Tail        JournalTail `optional:"true"`
	Checkpoints CheckpointStore
}

func newFxLocalProjection(p LocalProjectionParams) *LocalProjection {
	return NewLocalProjection(p.Projector, p.Tail, p.Checkpoints, p.Config.CheckpointName)
}
