package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// clockBase anchors lease times kept in atomics: durations since it, on the monotonic
// clock.
var clockBase = time.Now()

// heldLease is a lease this subscription holds. Its writes (renewals, checkpoints, the
// final release) are serialized by mu, so the counter it expects is always the one it
// wrote last. Once a write finds the lease taken, or the lease went unrenewed for too
// long, it is lost for good: no further writes.
type heldLease struct {
	store     LeaseStore
	streamArn string
	shardID   string
	owner     string
	// fenceAfter is how long after the last successful write the lease stops being
	// fresh: LeaseDuration − RenewInterval, before any other worker may regard it as
	// expired.
	fenceAfter time.Duration

	// okAt is when the last successful write was sent (since clockBase); lost is set
	// once a write found the lease taken or it went unrenewed past its fence. Both are
	// read without mu, so that a reader's fence check never waits for a renewal in
	// flight.
	okAt atomic.Int64
	lost atomic.Bool

	mu      sync.Mutex
	counter int64
	// written is the checkpoint as stored; acked the one to write next.
	written, acked string
	// done is set once the lease was released, handed over or finished.
	done bool
}

func newHeldLease(store LeaseStore, streamArn, owner string, l Lease, sentAt time.Time, fenceAfter time.Duration) *heldLease {
	h := &heldLease{store: store, streamArn: streamArn, shardID: l.ShardID, owner: owner, fenceAfter: fenceAfter,
		counter: l.Counter, written: l.Checkpoint, acked: l.Checkpoint}
	h.okAt.Store(int64(sentAt.Sub(clockBase)))
	return h
}

// write applies a change under mu: the lease must still be ours with the counter we
// wrote last. A conflict marks the lease lost and returns ErrLeaseLost.
func (h *heldLease) write(ctx context.Context, u LeaseUpdate) (Lease, error) {
	if h.lost.Load() {
		return Lease{}, fmt.Errorf("lease %s: %w", h.shardID, ErrLeaseLost)
	}
	if h.done {
		return Lease{}, fmt.Errorf("lease %s: already given up", h.shardID)
	}
	u.ExpectOwner, u.ExpectCounter = h.owner, h.counter
	sent := time.Now()
	l, err := h.store.UpdateLease(ctx, h.streamArn, h.shardID, u)
	if errors.Is(err, ErrLeaseConflict) {
		h.lost.Store(true)
		return Lease{}, fmt.Errorf("lease %s: %w: %w", h.shardID, ErrLeaseLost, err)
	}
	if err != nil {
		return Lease{}, err
	}
	h.counter = l.Counter
	h.okAt.Store(int64(sent.Sub(clockBase)))
	if u.Checkpoint != "" {
		h.written = u.Checkpoint
	}
	return l, nil
}

// renew increments the counter, writing the acked checkpoint if it moved, and returns
// the owner that asked for the lease ("" if none).
func (h *heldLease) renew(ctx context.Context) (pending string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return "", nil
	}
	u := LeaseUpdate{NewOwner: h.owner}
	if h.acked != h.written {
		u.Checkpoint = h.acked
	}
	l, err := h.write(ctx, u)
	if err != nil {
		return "", fmt.Errorf("renew: %w", err)
	}
	return l.PendingOwner, nil
}

// setAcked records the checkpoint to write next.
func (h *heldLease) setAcked(seq string) {
	h.mu.Lock()
	h.acked = seq
	h.mu.Unlock()
}

// checkpoint writes the acked checkpoint if it moved.
func (h *heldLease) checkpoint(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || h.acked == h.written {
		return nil
	}
	if _, err := h.write(ctx, LeaseUpdate{NewOwner: h.owner, Checkpoint: h.acked}); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	return nil
}

// release gives the lease up with its final checkpoint: to the worker to (a handoff),
// or to nobody.
func (h *heldLease) release(ctx context.Context, to string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	u := LeaseUpdate{NewOwner: to}
	if h.acked != h.written {
		u.Checkpoint = h.acked
	}
	if _, err := h.write(ctx, u); err != nil {
		return fmt.Errorf("release: %w", err)
	}
	h.done = true
	return nil
}

// finish marks the shard read to its end and gives the lease up: children may be read.
func (h *heldLease) finish(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return nil
	}
	if _, err := h.write(ctx, LeaseUpdate{Checkpoint: CheckpointShardEnd, Ended: true}); err != nil {
		return fmt.Errorf("finish: %w", err)
	}
	h.done = true
	return nil
}

// fresh reports whether the lease may still be read from: not lost, and renewed
// recently enough that no other worker can have taken it over.
func (h *heldLease) fresh(now time.Time) bool {
	return !h.lost.Load() && now.Sub(clockBase)-time.Duration(h.okAt.Load()) < h.fenceAfter
}

// markLost stops all further writes.
func (h *heldLease) markLost() { h.lost.Store(true) }
