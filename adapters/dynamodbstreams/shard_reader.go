package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"

	"github.com/agentwatch/agentwatch/app"
)

// releaseTimeout bounds the final lease write of a reader.
const releaseTimeout = 10 * time.Second

// exitReason is why a shard reader ended.
type exitReason int

const (
	// exitLost: the lease was taken, went unrenewed past its fence, or the subscriber
	// was killed. Nothing was written.
	exitLost exitReason = iota
	// exitReleased: drained and released with no owner (Close, ctx canceled).
	exitReleased
	// exitHandedOff: drained and handed over to the worker that asked for it.
	exitHandedOff
	// exitFinished: read to its end (checkpoint SHARD_END).
	exitFinished
	// exitGone: the shard is no longer in the stream.
	exitGone
)

func (e exitReason) String() string {
	return [...]string{"lost", "released", "handed off", "finished", "gone"}[e]
}

// entryState is where a fetched record is.
type entryState int

const (
	entryReady   entryState = iota // fetched, never delivered
	entryOut                       // delivered, neither acked nor nacked yet
	entryWaiting                   // nacked (or its quarantine failed): due again at due
	entryDone                      // acked, quarantined or skipped
)

// entry is one fetched record.
type entry struct {
	seq     string
	eventID string
	msg     recordMessage
	// invalid is why the record cannot be delivered, rawImage its image.
	invalid  error
	rawImage string
	state    entryState
	// delivered is set once it was sent (it takes an in-flight slot until done).
	delivered  bool
	deliveries int
	nacks      int
	due        time.Time
	// quarantine, once set, is the reason it must be quarantined.
	quarantine string
	cancel     context.CancelFunc
}

// ackResult is the outcome of one delivery.
type ackResult struct {
	e        *entry
	delivery int
	acked    bool
}

// shardReader reads one shard while its subscription holds the lease. Its run goroutine
// owns the loop state; the subscription talks to it through startDrain (handoff,
// shutdown) and cancel (lease lost).
type shardReader struct {
	c       *subscription
	lease   *heldLease
	shardID string
	// child shards start at TRIM_HORIZON whatever StartPosition says.
	child  bool
	logger watermill.LoggerAdapter

	ctx       context.Context
	cancel    context.CancelFunc
	drainOnce sync.Once
	drainCh   chan struct{}
	handoffTo string
	done      chan struct{}
	// exit is set before done is closed.
	exit exitReason
	// results receives the outcome of each delivery; its capacity (MaxInFlight) is the
	// most deliveries awaiting an outcome, so senders never block.
	results chan ackResult

	// Loop state, run goroutine only.
	iterator       *string
	ended          bool
	lastRead       string
	forceHorizon   bool
	entries        []*entry
	nextNew        int
	waiting        []*entry
	inFlight       int
	outstanding    int
	nextPoll       time.Time
	idle           time.Duration
	lastCheckpoint time.Time
}

func newShardReader(c *subscription, lease *heldLease, child bool) *shardReader {
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.msgParent))
	r := &shardReader{
		c: c, lease: lease, shardID: lease.shardID, child: child,
		logger: c.logger.With(watermill.LogFields{"shard": lease.shardID}),
		ctx:    ctx, cancel: cancel, drainCh: make(chan struct{}), done: make(chan struct{}),
		results: make(chan ackResult, c.cfg.MaxInFlight), idle: c.cfg.PollInterval, lastCheckpoint: time.Now(),
	}
	if cp := lease.written; cp != CheckpointShardEnd {
		r.lastRead = cp
	}
	return r
}

// startDrain asks the reader to stop reading, wait for its messages in flight and
// release the lease — to the worker to, or to nobody. Only the first call counts; it
// reports whether it was the first.
func (r *shardReader) startDrain(to string) (first bool) {
	r.drainOnce.Do(func() {
		r.handoffTo = to
		close(r.drainCh)
		first = true
	})
	return first
}

func (r *shardReader) run() {
	if h := r.c.s.readerHook; h != nil {
		h(r.shardID, r.c.owner, true)
	}
	defer func() {
		for _, e := range r.entries {
			if e.cancel != nil {
				e.cancel()
			}
		}
		r.cancel()
		r.c.s.metrics.lag.DeleteLabelValues(r.shardID)
		if h := r.c.s.readerHook; h != nil {
			h(r.shardID, r.c.owner, false)
		}
		close(r.done)
		r.c.signal()
	}()
	r.exit = r.loop()
	switch r.exit {
	case exitLost:
		r.c.s.metrics.leaseEvents.WithLabelValues(leaseLost).Inc()
	case exitReleased:
		r.c.s.metrics.leaseEvents.WithLabelValues(leaseReleased).Inc()
	case exitHandedOff:
		r.c.s.metrics.leaseEvents.WithLabelValues(leaseHandedOff).Inc()
	case exitFinished:
		r.c.s.metrics.leaseEvents.WithLabelValues(leaseFinished).Inc()
	}
	r.logger.Info("shard reader ended", watermill.LogFields{"reason": r.exit.String(), "last_read": r.lastRead})
}

// loop reads and delivers until the reader must end, and says why.
func (r *shardReader) loop() exitReason {
	if reason, stop := r.open(r.lastRead); stop {
		return reason
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		select {
		case <-r.drainCh:
			return r.drain()
		default:
		}
		if r.ctx.Err() != nil {
			return exitLost
		}
		if !r.lease.fresh(time.Now()) {
			r.logger.Error("lease not renewed in time: stopped reading", ErrLeaseLost, nil)
			r.lease.markLost()
			return exitLost
		}
		if r.deliverDue() {
			continue // interrupted: drain, lost or fenced
		}
		r.advance()
		if r.ended && len(r.entries) == 0 {
			return r.finish()
		}
		now := time.Now()
		if r.canFetch() && !now.Before(r.nextPoll) {
			if reason, stop := r.fetch(); stop {
				return reason
			}
			continue
		}
		if r.lease.acked != "" && now.Sub(r.lastCheckpoint) >= r.c.cfg.CheckpointInterval {
			r.lastCheckpoint = now
			if err := r.lease.checkpoint(r.ctx); errors.Is(err, ErrLeaseLost) {
				r.logger.Info("lease lost to another worker: stopped reading", nil)
				return exitLost
			} else if err != nil {
				r.logger.Error("write checkpoint; will retry", err, nil)
			}
		}
		timer.Reset(r.nextWake(now))
		select {
		case res := <-r.results:
			r.handle(res)
		case <-timer.C:
		case <-r.drainCh:
		case <-r.ctx.Done():
		}
	}
}

// open gets an iterator after the sequence number after, or at the start position when
// there is none. It reports stop when the reader must end instead.
func (r *shardReader) open(after string) (exitReason, bool) {
	for {
		in := &dynamodbstreams.GetShardIteratorInput{StreamArn: &r.c.streamArn, ShardId: &r.shardID}
		switch {
		case after != "" && !r.forceHorizon:
			in.ShardIteratorType, in.SequenceNumber = stypes.ShardIteratorTypeAfterSequenceNumber, aws.String(after)
		case r.child || r.forceHorizon || r.c.cfg.StartPosition == StartTrimHorizon:
			in.ShardIteratorType = stypes.ShardIteratorTypeTrimHorizon
		default:
			in.ShardIteratorType = stypes.ShardIteratorTypeLatest
		}
		out, err := r.c.s.streams.GetShardIterator(r.ctx, in)
		if err == nil {
			r.forceHorizon = false
			r.iterator = out.ShardIterator
			r.ended = r.iterator == nil
			return 0, false
		}
		var trimmed *stypes.TrimmedDataAccessException
		var notFound *stypes.ResourceNotFoundException
		switch {
		case r.ctx.Err() != nil:
			return exitLost, true
		case errors.As(err, &trimmed):
			r.trimmedRestart(err)
			continue
		case errors.As(err, &notFound):
			return r.gone(err), true
		}
		r.logger.Error("get shard iterator; will retry", err, watermill.LogFields{"after": after})
		if reason, stop := r.pause(r.c.cfg.ErrorBackoff); stop {
			return reason, true
		}
	}
}

// trimmedRestart restarts the shard at TRIM_HORIZON: the records between the last one
// read and the trim horizon are gone.
func (r *shardReader) trimmedRestart(err error) {
	r.c.s.metrics.trimmedRestarts.Inc()
	r.logger.Error("records trimmed from the stream before they were read (lost); restarting the shard at TRIM_HORIZON",
		err, watermill.LogFields{"last_read": r.lastRead})
	r.forceHorizon = true
}

// pause waits d, or until the reader must drain or stop.
func (r *shardReader) pause(d time.Duration) (exitReason, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return 0, false
	case <-r.drainCh:
		return r.drain(), true
	case <-r.ctx.Done():
		return exitLost, true
	}
}

// canFetch reports whether the next GetRecords is due, as far as buffered records go:
// everything fetched was delivered, and the buffer is bounded.
func (r *shardReader) canFetch() bool {
	return r.iterator != nil && r.nextNew == len(r.entries) && len(r.entries) < 2*r.c.cfg.MaxRecords+r.c.cfg.MaxInFlight
}

// nextWake is how long the loop may sleep when nothing arrives.
func (r *shardReader) nextWake(now time.Time) time.Duration {
	wake := now.Add(r.c.cfg.RenewInterval)
	if r.canFetch() && r.nextPoll.Before(wake) {
		wake = r.nextPoll
	}
	for _, e := range r.waiting {
		if e.due.Before(wake) {
			wake = e.due
		}
	}
	if r.lease.acked != "" {
		if cp := r.lastCheckpoint.Add(r.c.cfg.CheckpointInterval); cp.Before(wake) {
			wake = cp
		}
	}
	return max(wake.Sub(now), time.Millisecond)
}

// fetch calls GetRecords once and buffers the new records.
func (r *shardReader) fetch() (exitReason, bool) {
	cfg := &r.c.cfg
	start := time.Now()
	out, err := r.c.s.streams.GetRecords(r.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: r.iterator, Limit: aws.Int32(int32(cfg.MaxRecords))})
	if err != nil {
		return r.readError(err)
	}
	r.iterator = out.NextShardIterator
	r.ended = r.iterator == nil
	var newest *time.Time
	for i := range out.Records {
		rec := &out.Records[i]
		if rec.Dynamodb == nil || !validSequenceNumber(aws.ToString(rec.Dynamodb.SequenceNumber)) {
			r.logger.Error("stream record without a sequence number; skipped", nil, watermill.LogFields{"event_id": aws.ToString(rec.EventID)})
			continue
		}
		seq := *rec.Dynamodb.SequenceNumber
		if r.lastRead != "" && compareSequenceNumbers(seq, r.lastRead) <= 0 {
			continue // read before (an iterator restarted at TRIM_HORIZON)
		}
		r.lastRead = seq
		r.c.s.metrics.recordsRead.WithLabelValues(string(rec.EventName)).Inc()
		if at := rec.Dynamodb.ApproximateCreationDateTime; at != nil {
			newest = at
		}
		e := &entry{seq: seq, eventID: aws.ToString(rec.EventID)}
		d := r.c.s.decode(rec)
		switch {
		case d.skip != "":
			e.state = entryDone
			r.c.s.metrics.recordsSkipped.WithLabelValues(d.skip).Inc()
		case d.invalid != nil:
			e.invalid, e.rawImage = d.invalid, d.rawImage
		default:
			e.msg = recordMessage{uuid: d.uuid, payload: d.payload, metadata: recordMetadata(r.shardID, rec, d.metadata)}
		}
		r.entries = append(r.entries, e)
	}
	if len(out.Records) == 0 {
		r.idle = min(2*r.idle, cfg.MaxPollInterval)
		r.c.s.metrics.lag.WithLabelValues(r.shardID).Set(0)
	} else {
		r.idle = cfg.PollInterval
		if newest != nil {
			r.c.s.metrics.lag.WithLabelValues(r.shardID).Set(max(time.Since(*newest).Seconds(), 0))
		}
	}
	r.nextPoll = start.Add(r.idle)
	return 0, false
}

// readError handles a failed GetRecords.
func (r *shardReader) readError(err error) (exitReason, bool) {
	var expired *stypes.ExpiredIteratorException
	var trimmed *stypes.TrimmedDataAccessException
	var notFound *stypes.ResourceNotFoundException
	switch {
	case r.ctx.Err() != nil:
		return exitLost, true
	case errors.As(err, &expired):
		r.c.s.metrics.iteratorRenewals.Inc()
		r.logger.Info("shard iterator expired; getting a new one after the last record read", watermill.LogFields{"after": r.lastRead})
		return r.open(r.lastRead)
	case errors.As(err, &trimmed):
		r.trimmedRestart(err)
		return r.open("")
	case errors.As(err, &notFound):
		return r.gone(err), true
	}
	r.logger.Error("get records; will retry", err, nil)
	r.nextPoll = time.Now().Add(r.c.cfg.ErrorBackoff)
	return 0, false
}

// deliverDue delivers what is due: nacked messages whose backoff is over (and pending
// quarantines), then new records while in-flight slots are free. It reports whether a
// send was interrupted (the loop then finds out why).
func (r *shardReader) deliverDue() (interrupted bool) {
	now := time.Now()
	for i := 0; i < len(r.waiting); {
		e := r.waiting[i]
		if e.due.After(now) {
			i++
			continue
		}
		if e.quarantine != "" {
			if !r.quarantine(e) {
				e.due = now.Add(r.c.cfg.ErrorBackoff)
				i++
				continue
			}
		} else if !r.send(e) {
			return true
		}
		r.waiting = append(r.waiting[:i], r.waiting[i+1:]...)
	}
	for r.nextNew < len(r.entries) {
		e := r.entries[r.nextNew]
		switch {
		case e.state == entryDone:
		case e.invalid != nil:
			e.quarantine = fmt.Sprintf("stream record %s (shard %s, sequence number %s) is not a valid journal item: %v",
				e.eventID, r.shardID, e.seq, e.invalid)
			if !r.quarantine(e) {
				e.state, e.due = entryWaiting, now.Add(r.c.cfg.ErrorBackoff)
				r.waiting = append(r.waiting, e)
			}
		case r.inFlight >= r.c.cfg.MaxInFlight:
			return false
		default:
			if !r.send(e) {
				return true
			}
			r.inFlight++
		}
		r.nextNew++
	}
	return false
}

// send delivers e once; false when the reader must stop instead.
func (r *shardReader) send(e *entry) bool {
	if !r.lease.fresh(time.Now()) {
		return false
	}
	msg := e.msg.newMessage()
	ctx, cancel := context.WithCancel(r.c.msgParent)
	msg.SetContext(ctx)
	select {
	case r.c.out <- msg:
	case <-r.drainCh:
		cancel()
		return false
	case <-r.ctx.Done():
		cancel()
		return false
	}
	e.deliveries++
	e.state, e.delivered, e.cancel = entryOut, true, cancel
	r.outstanding++
	delivery := e.deliveries
	go func() {
		select {
		case <-msg.Acked():
			r.results <- ackResult{e: e, delivery: delivery, acked: true}
		case <-msg.Nacked():
			r.results <- ackResult{e: e, delivery: delivery}
		case <-r.done:
		}
	}()
	return true
}

// handle applies the outcome of a delivery.
func (r *shardReader) handle(res ackResult) {
	e := res.e
	if e.state != entryOut || e.deliveries != res.delivery {
		return
	}
	r.outstanding--
	e.cancel()
	e.cancel = nil
	if res.acked {
		r.done1(e)
		return
	}
	e.nacks++
	e.state = entryWaiting
	if e.nacks > r.c.cfg.MaxRetries {
		e.quarantine = fmt.Sprintf("nacked %d times (MaxRetries %d); last delivered from shard %s, sequence number %s",
			e.nacks, r.c.cfg.MaxRetries, r.shardID, e.seq)
		e.due = time.Now()
	} else {
		e.due = time.Now().Add(r.c.cfg.NackBackoff)
	}
	r.waiting = append(r.waiting, e)
}

// done1 marks e done, freeing its in-flight slot.
func (r *shardReader) done1(e *entry) {
	e.state = entryDone
	if e.delivered {
		r.inFlight--
	}
}

// quarantine puts e into the quarantine; false if that failed (to be retried).
func (r *shardReader) quarantine(e *entry) bool {
	payload, reason := e.rawImage, quarantineInvalid
	if e.invalid == nil {
		payload, reason = string(e.msg.payload), quarantineRetries
	}
	q := app.Quarantined{Source: Source, Key: position(r.shardID, e.seq), Reason: e.quarantine, Payload: payload, At: time.Now().UTC()}
	if err := r.c.s.quarantine.Quarantine(r.ctx, q); err != nil {
		r.logger.Error("quarantine a stream record; will retry", err, watermill.LogFields{"sequence_number": e.seq})
		return false
	}
	r.c.s.metrics.quarantined.WithLabelValues(reason).Inc()
	r.logger.Info("stream record quarantined", watermill.LogFields{"sequence_number": e.seq, "reason": e.quarantine})
	r.done1(e)
	return true
}

// advance drops the done prefix of the buffer, moving the checkpoint to its last record.
func (r *shardReader) advance() {
	n := 0
	for n < len(r.entries) && r.entries[n].state == entryDone {
		n++
	}
	if n == 0 {
		return
	}
	r.lease.setAcked(r.entries[n-1].seq)
	clear(r.entries[:n])
	r.entries = r.entries[n:]
	r.nextNew = max(r.nextNew-n, 0)
}

// finish marks the shard read to its end.
func (r *shardReader) finish() exitReason {
	for {
		err := r.lease.finish(r.ctx)
		if err == nil {
			r.logger.Info("shard read to its end", nil)
			return exitFinished
		}
		if errors.Is(err, ErrLeaseLost) || r.ctx.Err() != nil {
			return exitLost
		}
		r.logger.Error("mark shard finished; will retry", err, nil)
		if reason, stop := r.pause(r.c.cfg.ErrorBackoff); stop {
			return reason
		}
	}
}

// gone gives up a shard that is no longer in the stream.
func (r *shardReader) gone(err error) exitReason {
	r.logger.Error("shard no longer in the stream; giving its lease up", err, nil)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), releaseTimeout)
	defer cancel()
	if err := r.lease.release(ctx, ""); err != nil {
		r.logger.Error("release lease", err, nil)
	}
	return exitGone
}

// drain waits up to DrainTimeout for the messages out to be acked or nacked, then
// writes the checkpoint and releases the lease (to handoffTo).
func (r *shardReader) drain() exitReason {
	deadline := time.NewTimer(r.c.cfg.DrainTimeout)
	defer deadline.Stop()
wait:
	for r.outstanding > 0 {
		select {
		case res := <-r.results:
			r.handle(res)
		case <-deadline.C:
			r.logger.Info("drain timed out; messages in flight will be delivered again", watermill.LogFields{"in_flight": r.outstanding})
			break wait
		case <-r.ctx.Done():
			return exitLost
		}
	}
	r.advance()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), releaseTimeout)
	defer cancel()
	if err := r.lease.release(ctx, r.handoffTo); err != nil {
		r.logger.Error("release lease", err, watermill.LogFields{"to": r.handoffTo})
		if errors.Is(err, ErrLeaseLost) {
			return exitLost
		}
		return exitReleased
	}
	if r.handoffTo != "" {
		return exitHandedOff
	}
	return exitReleased
}
