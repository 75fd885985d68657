package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
)

// subscription is one Subscribe call: a worker in the lease table. Its run goroutine
// syncs shards and leases, renews the leases and starts one shardReader per lease held;
// readers deliver to out.
type subscription struct {
	s         *Subscriber
	cfg       Config
	table     string
	streamArn string
	owner     string
	out       chan<- *message.Message
	logger    watermill.LoggerAdapter
	// msgParent is the parent of message contexts: the Subscribe ctx.
	msgParent context.Context

	tracker *leaseTracker
	// readers are the shards read, by shard id (run goroutine only).
	readers map[string]*shardReader
	// wake is signaled (never blocking) when a reader ends.
	wake chan struct{}
	// warnedGone remembers unfinished leases of shards gone from the stream, logged once.
	warnedGone map[string]bool
}

func newSubscription(ctx context.Context, s *Subscriber, table, streamArn, owner string, out chan<- *message.Message) *subscription {
	return &subscription{
		s: s, cfg: s.cfg, table: table, streamArn: streamArn, owner: owner, out: out, msgParent: ctx,
		logger:  s.logger.With(watermill.LogFields{"table": table, "stream": streamArn, "owner": owner}),
		tracker: newLeaseTracker(s.cfg.LeaseDuration), readers: map[string]*shardReader{},
		wake: make(chan struct{}, 1), warnedGone: map[string]bool{},
	}
}

// run works until ctx is done or the subscriber closes (then it drains and releases
// every lease) or is killed (then it just stops).
func (c *subscription) run(ctx context.Context) {
	apiCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	c.logger.Info("dynamodbstreams subscription started", nil)
	syncT := time.NewTimer(0)
	defer syncT.Stop()
	renew := time.NewTicker(c.cfg.RenewInterval)
	defer renew.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-c.s.closing:
			break loop
		case <-c.s.halt:
			c.haltReaders()
			return
		case <-syncT.C:
			next := c.cfg.ShardSyncInterval
			if err := c.sync(apiCtx); err != nil {
				c.logger.Error("lease sync failed; retrying", err, nil)
				next = min(next, c.cfg.ErrorBackoff)
			}
			syncT.Reset(next)
		case <-renew.C:
			c.renewAll(apiCtx)
		case <-c.wake:
			if c.reap() {
				// A shard was read to its end: its children may be read now.
				syncT.Reset(0)
			}
		}
	}
	c.shutdown(apiCtx, renew.C)
	c.logger.Info("dynamodbstreams subscription ended", nil)
}

// shutdown drains every reader and waits for them to release their leases, renewing
// the leases meanwhile.
func (c *subscription) shutdown(ctx context.Context, renew <-chan time.Time) {
	for _, r := range c.readers {
		r.startDrain("")
	}
	for len(c.readers) > 0 {
		select {
		case <-c.wake:
			c.reap()
		case <-renew:
			c.renewAll(ctx)
		case <-c.s.halt:
			c.haltReaders()
			return
		}
	}
}

// haltReaders stops every reader without another write, and waits for them.
func (c *subscription) haltReaders() {
	for _, r := range c.readers {
		r.lease.markLost()
		r.cancel()
	}
	for _, r := range c.readers {
		<-r.done
	}
	c.reap()
}

// reap forgets the readers that ended; it reports whether one read its shard to the end.
func (c *subscription) reap() (finished bool) {
	for id, r := range c.readers {
		select {
		case <-r.done:
			delete(c.readers, id)
			c.s.metrics.leasesHeld.Dec()
			finished = finished || r.exit == exitFinished
		default:
		}
	}
	return finished
}

// signal wakes the run goroutine.
func (c *subscription) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// renewAll renews every lease held. A lease found taken, or left unrenewed past its
// fence, stops its reader at once; a lease another worker asked for is handed over.
func (c *subscription) renewAll(ctx context.Context) {
	c.reap()
	for id, r := range c.readers {
		pending, err := r.lease.renew(ctx)
		switch {
		case errors.Is(err, ErrLeaseLost):
			c.logger.Info("lease lost to another worker; stopped reading the shard", watermill.LogFields{"shard": id})
			r.cancel()
		case err != nil:
			if !r.lease.fresh(time.Now()) {
				c.logger.Error("lease not renewed in time; stopped reading the shard", err, watermill.LogFields{"shard": id})
				r.lease.markLost()
				r.cancel()
			} else {
				c.logger.Error("lease renewal failed; will retry", err, watermill.LogFields{"shard": id})
			}
		case pending != "" && pending != c.owner:
			if r.startDrain(pending) {
				c.logger.Info("handing lease over", watermill.LogFields{"shard": id, "to": pending})
			}
		}
	}
}

// listShards lists every shard of the stream, page by page.
func (c *subscription) listShards(ctx context.Context) ([]stypes.Shard, error) {
	var shards []stypes.Shard
	in := &dynamodbstreams.DescribeStreamInput{StreamArn: &c.streamArn}
	for {
		out, err := c.s.streams.DescribeStream(ctx, in)
		if err != nil {
			return nil, err
		}
		if out.StreamDescription == nil {
			return shards, nil
		}
		shards = append(shards, out.StreamDescription.Shards...)
		last := out.StreamDescription.LastEvaluatedShardId
		if last == nil {
			return shards, nil
		}
		in = &dynamodbstreams.DescribeStreamInput{StreamArn: &c.streamArn, ExclusiveStartShardId: last}
	}
}

// sync lists shards and leases, creates the leases of new shards, deletes the finished
// leases of shards gone from the stream, and takes or asks for leases as planLeases
// says.
func (c *subscription) sync(ctx context.Context) error {
	shards, err := c.listShards(ctx)
	if err != nil {
		return err
	}
	leases, err := c.s.leases.ListLeases(ctx, c.streamArn)
	if err != nil {
		return err
	}
	have := make(map[string]bool, len(leases))
	for _, l := range leases {
		have[l.ShardID] = true
	}
	inStream := make(map[string]bool, len(shards))
	created := false
	for _, sh := range shards {
		id := aws.ToString(sh.ShardId)
		inStream[id] = true
		if have[id] {
			continue
		}
		l := Lease{ShardID: id}
		if p := aws.ToString(sh.ParentShardId); p != "" {
			l.ParentShardIDs = []string{p}
		}
		ok, err := c.s.leases.CreateLease(ctx, c.streamArn, l)
		if err != nil {
			return err
		}
		created = created || ok
	}
	if created || len(leases) < len(shards) {
		if leases, err = c.s.leases.ListLeases(ctx, c.streamArn); err != nil {
			return err
		}
	}
	now := time.Now()
	c.tracker.observe(leases, now)
	c.cleanup(ctx, leases, inStream, now)

	held := make(map[string]bool, len(c.readers))
	for id := range c.readers {
		held[id] = true
	}
	plan := planLeases(planInput{me: c.owner, leases: leases, inStream: inStream, held: held,
		expired: func(l *Lease) bool { return c.tracker.expired(l, now) }})
	for _, l := range plan.take {
		switch err := c.take(ctx, l); {
		case errors.Is(err, ErrLeaseNotAcquired):
			c.logger.Debug("lease taken by another worker first", watermill.LogFields{"shard": l.ShardID})
		case err != nil:
			c.logger.Error("take lease", err, watermill.LogFields{"shard": l.ShardID})
		}
	}
	if h := plan.handoff; h != nil {
		_, err := c.s.leases.UpdateLease(ctx, c.streamArn, h.ShardID, LeaseUpdate{ExpectOwner: h.Owner, HandoffTo: c.owner})
		switch {
		case errors.Is(err, ErrLeaseConflict):
		case err != nil:
			return err
		default:
			c.s.metrics.leaseEvents.WithLabelValues(leaseHandoffRequested).Inc()
			c.logger.Info("asked for a lease", watermill.LogFields{"shard": h.ShardID, "from": h.Owner,
				"target": plan.target, "workers": plan.workers})
		}
	}
	return nil
}

// cleanup deletes the finished leases of shards gone from the stream (trimmed after 24
// h): their children no longer wait for them.
func (c *subscription) cleanup(ctx context.Context, leases []Lease, inStream map[string]bool, now time.Time) {
	for i := range leases {
		l := &leases[i]
		if inStream[l.ShardID] || c.readers[l.ShardID] != nil {
			continue
		}
		if !l.Finished() {
			if !c.warnedGone[l.ShardID] {
				c.warnedGone[l.ShardID] = true
				c.logger.Info("shard gone from the stream before it was read to its end: its unread records are lost",
					watermill.LogFields{"shard": l.ShardID, "checkpoint": l.Checkpoint})
			}
			continue
		}
		err := c.s.leases.DeleteLease(ctx, c.streamArn, l.ShardID, l.Counter)
		if err != nil && !errors.Is(err, ErrLeaseConflict) {
			c.logger.Error("delete lease of a trimmed shard", err, watermill.LogFields{"shard": l.ShardID})
		}
	}
}

// take takes l (free, expired, or already ours) and starts reading its shard. It fails
// with ErrLeaseNotAcquired when another worker wrote the lease first.
func (c *subscription) take(ctx context.Context, l Lease) error {
	sent := time.Now()
	nl, err := c.s.leases.UpdateLease(ctx, c.streamArn, l.ShardID, LeaseUpdate{ExpectOwner: l.Owner, ExpectCounter: l.Counter, NewOwner: c.owner})
	if errors.Is(err, ErrLeaseConflict) {
		// The take may have been applied and its response lost (the SDK's retry then
		// fails the condition): the lease is ours if it says so with the counter the
		// take wrote.
		cur, gerr := c.s.leases.GetLease(ctx, c.streamArn, l.ShardID)
		if gerr != nil || cur.Owner != c.owner || cur.Counter != l.Counter+1 {
			return fmt.Errorf("take lease %s: %w: %w", l.ShardID, ErrLeaseNotAcquired, err)
		}
		c.s.metrics.leaseWritesConfirmed.Inc()
		nl, err = cur, nil
	}
	if err != nil {
		return fmt.Errorf("take lease %s: %w", l.ShardID, err)
	}
	event := leaseTaken
	switch l.Owner {
	case "":
	case c.owner:
		event = leaseAdopted
	default:
		event = leaseTakenExpired
	}
	c.s.metrics.leaseEvents.WithLabelValues(event).Inc()
	c.s.metrics.leasesHeld.Inc()
	c.logger.Info("lease "+event, watermill.LogFields{"shard": l.ShardID, "previous_owner": l.Owner, "checkpoint": nl.Checkpoint})
	h := newHeldLease(c.s.leases, c.streamArn, c.owner, nl, sent, c.cfg.LeaseDuration-c.cfg.RenewInterval)
	h.onConfirmed = c.s.metrics.leaseWritesConfirmed.Inc
	r := newShardReader(c, h, len(nl.ParentShardIDs) > 0)
	c.readers[l.ShardID] = r
	go r.run()
	return nil
}
