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
	// watermark is the shard's watermark to write next, wmWritten the one stored.
	watermark, wmWritten time.Time
	// done is set once the lease was released, handed over or finished.
	done bool
	// onConfirmed, when set, is called for each write that failed its condition and
	// was found applied when the lease was read again.
	onConfirmed func()
}

func newHeldLease(store LeaseStore, streamArn, owner string, l Lease, sentAt time.Time, fenceAfter time.Duration) *heldLease {
	h := &heldLease{store: store, streamArn: streamArn, shardID: l.ShardID, owner: owner, fenceAfter: fenceAfter,
		counter: l.Counter, written: l.Checkpoint, acked: l.Checkpoint, watermark: l.Watermark, wmWritten: l.Watermark}
	h.okAt.Store(int64(sentAt.Sub(clockBase)))
	return h
}

// write applies a change under mu: the lease must still be ours with the counter we
// wrote last. A lease found taken marks the lease lost and returns ErrLeaseLost.
func (h *heldLease) write(ctx context.Context, u LeaseUpdate) (Lease, error) {
	if h.lost.Load() {
		return Lease{}, fmt.Errorf("lease %s: %w", h.shardID, ErrLeaseLost)
	}
	if h.done {
		return Lease{}, fmt.Errorf("lease %s: already given up", h.shardID)
	}
	sent := time.Now()
	// A write can fail its condition although nobody else touched the lease: when its
	// first attempt was applied and its response lost, the SDK's retry finds the
	// counter moved; when an earlier write failed without an answer (every attempt
	// lost) and was applied all the same, this one finds it moved. resolve re-reads
	// the lease to tell those apart from a lease taken; an earlier write found applied
	// is written over once more (hence the loop, bounded).
	for attempt := 0; ; attempt++ {
		u.ExpectOwner, u.ExpectCounter = h.owner, h.counter
		l, err := h.store.UpdateLease(ctx, h.streamArn, h.shardID, u)
		if errors.Is(err, ErrLeaseConflict) {
			var again bool
			l, again, err = h.resolve(ctx, u, err)
			if again && attempt < 3 {
				continue
			}
		}
		if errors.Is(err, ErrLeaseLost) {
			h.lost.Store(true)
			return Lease{}, err
		}
		if err != nil {
			return Lease{}, err
		}
		h.counter = l.Counter
		h.okAt.Store(int64(sent.Sub(clockBase)))
		if u.Checkpoint != "" {
			h.written = u.Checkpoint
		}
		if !u.Watermark.IsZero() {
			h.wmWritten = u.Watermark
		}
		return l, nil
	}
}

// resolve re-reads the lease after u failed its condition (conflict is that error) and
// says what happened: u was applied after all (the lease as written), an earlier write
// of ours was applied and u must be written again over it (again), or the lease was
// taken (an error matching ErrLeaseLost). An error of the re-read itself is returned
// as is: the outcome stays unknown, and the next write finds out.
func (h *heldLease) resolve(ctx context.Context, u LeaseUpdate, conflict error) (l Lease, again bool, err error) {
	lost := func() (Lease, bool, error) {
		return Lease{}, false, fmt.Errorf("lease %s: %w: %w", h.shardID, ErrLeaseLost, conflict)
	}
	cur, err := h.store.GetLease(ctx, h.streamArn, h.shardID)
	switch {
	case errors.Is(err, ErrLeaseNotFound):
		if u.Checkpoint == CheckpointShardEnd {
			// Finished, then deleted by a worker's cleanup of trimmed shards.
			h.confirmed()
			return Lease{ShardID: h.shardID, Checkpoint: CheckpointShardEnd}, false, nil
		}
		return lost()
	case err != nil:
		return Lease{}, false, fmt.Errorf("lease %s: re-read after a failed condition: %w", h.shardID, err)
	}
	wantCheckpoint := h.written
	if u.Checkpoint != "" {
		wantCheckpoint = u.Checkpoint
	}
	switch {
	case cur.Owner == u.NewOwner && cur.Counter == h.counter+1 && cur.Checkpoint == wantCheckpoint:
		// u itself was applied.
		h.confirmed()
		return cur, false, nil
	case u.Checkpoint == CheckpointShardEnd && cur.Finished():
		h.confirmed()
		return cur, false, nil
	case u.NewOwner != h.owner && cur.Owner != h.owner && cur.Counter > h.counter:
		// u gave the lease away and it is no longer ours: released or handed over,
		// and maybe taken since. Done either way; if u was not the write applied,
		// its final checkpoint did not land and the next owner delivers again what
		// came after the last one that did.
		h.confirmed()
		return cur, false, nil
	case cur.Owner == h.owner && cur.Counter == h.counter+1:
		// An earlier write of ours, whose outcome was unknown, was applied: nobody
		// else writes a lease with us as the owner while we hold it.
		h.counter = cur.Counter
		if cur.Checkpoint != "" {
			h.written = cur.Checkpoint
		}
		h.confirmed()
		return Lease{}, true, conflict
	}
	return lost()
}

// confirmed counts a lease write found applied on a re-read.
func (h *heldLease) confirmed() {
	if h.onConfirmed != nil {
		h.onConfirmed()
	}
}

// progress adds what moved since the last write — the acked checkpoint, the
// watermark — to u. Under mu.
func (h *heldLease) progress(u LeaseUpdate) LeaseUpdate {
	if h.acked != h.written {
		u.Checkpoint = h.acked
	}
	if h.watermark.After(h.wmWritten) {
		u.Watermark = h.watermark
	}
	return u
}

// renew increments the counter, writing the acked checkpoint and the watermark if they
// moved, and returns the owner that asked for the lease ("" if none).
func (h *heldLease) renew(ctx context.Context) (pending string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done {
		return "", nil
	}
	l, err := h.write(ctx, h.progress(LeaseUpdate{NewOwner: h.owner}))
	if err != nil {
		return "", fmt.Errorf("renew: %w", err)
	}
	return l.PendingOwner, nil
}

// setAcked records the checkpoint to write next (unless seq is empty) and moves the
// watermark to wm if that is later.
func (h *heldLease) setAcked(seq string, wm time.Time) {
	h.mu.Lock()
	if seq != "" {
		h.acked = seq
	}
	if wm.After(h.watermark) {
		h.watermark = wm
	}
	h.mu.Unlock()
}

// checkpoint writes the acked checkpoint (and the watermark) if due.
func (h *heldLease) checkpoint(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.done || (h.acked == h.written && !(h.wmWritten.IsZero() && !h.watermark.IsZero())) {
		return nil
	}
	if _, err := h.write(ctx, h.progress(LeaseUpdate{NewOwner: h.owner})); err != nil {
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
	if _, err := h.write(ctx, h.progress(LeaseUpdate{NewOwner: to})); err != nil {
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
