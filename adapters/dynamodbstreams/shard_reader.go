package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
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

// pageState is where a page is.
type pageState int

const (
	pageReady   pageState = iota // fetched, never delivered
	pageOut                      // delivered, neither acked nor nacked yet
	pageWaiting                  // nacked (or a quarantine failed): due again at due
	pageDone                     // acked, or nothing in it to deliver
)

// invalidRecord is a record whose image is not a journal item: it is quarantined, not
// delivered.
type invalidRecord struct {
	seq, eventID, rawImage string
	err                    error
}

// page is what one GetRecords call returned: the records to deliver in one message,
// and where the shard's checkpoint and watermark go once it is done.
type page struct {
	// first and last are the sequence numbers of the first and last record the call
	// returned (delivered or not); "" when it returned none.
	first, last string
	records     []app.JournalRecord
	// invalid are records still to quarantine before the page is delivered.
	invalid []invalidRecord
	// readStart is when the GetRecords call began; reachedEnd says that it reached the
	// shard's end (fewer records than MaxRecords, or the shard closed).
	readStart  time.Time
	reachedEnd bool
	// lastCreated is the ApproximateCreationDateTime of the last record.
	lastCreated time.Time

	state      pageState
	deliveries int
	nacks      int
	due        time.Time
	cancel     context.CancelFunc
}

// watermark is the shard's watermark once the page (and everything before it) is done:
// the start of the read minus the margin when the read reached the shard's end (every
// record appended before it began has been read, give or take the stream's
// propagation), else the last record's creation time rounded down to the second (the
// records after it were appended at or after that second).
func (p *page) watermark(margin time.Duration) time.Time {
	switch {
	case p.reachedEnd:
		return p.readStart.Add(-margin)
	case !p.lastCreated.IsZero():
		return p.lastCreated.Truncate(time.Second)
	}
	return time.Time{}
}

// ackResult is the outcome of one delivery of a page.
type ackResult struct {
	p        *page
	delivery int
	acked    bool
}

// shardReader reads one shard while its subscription holds the lease, and delivers what
// each GetRecords call returns as one page message, in order: the next page only once
// the previous one was acked. Its run goroutine owns the loop state; the subscription
// talks to it through startDrain (handoff, shutdown) and cancel (lease lost), and the
// metrics and readiness check read its status atomics.
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
	// results receives the outcome of each delivery; one page is out at a time, so
	// its capacity of one never blocks a sender.
	results chan ackResult
	// stopOnce tells the reader hook once that the reader no longer delivers.
	stopOnce sync.Once

	// Status for metrics and the readiness check (any goroutine). Times are
	// nanoseconds since clockBase (monotonic) unless said otherwise.
	startedAt time.Time
	// readAt is when the last successful GetRecords returned (the reader's start
	// before the first); progressAt when the last read or ack happened.
	readAt, progressAt atomic.Int64
	// readPos is the wall time (unix ns) up to which the shard is known read: the
	// start of the last read that reached the end, else the creation time of the
	// newest record read; the lease's watermark (or the reader's start) before the
	// first read.
	readPos atomic.Int64
	// lastErr is the last read error since the last successful read.
	lastErr atomic.Pointer[string]
	// readingSince is when the GetRecords call in flight began (0: none).
	readingSince atomic.Int64

	// Loop state, run goroutine only.
	iterator       *string
	ended          bool
	lastRead       string
	forceHorizon   bool
	pages          []*page
	outstanding    int
	nextPoll       time.Time
	idle           time.Duration
	lastCheckpoint time.Time
	// dirty is set once a page advanced the checkpoint or watermark.
	dirty bool
}

func newShardReader(c *subscription, lease *heldLease, child bool) *shardReader {
	ctx, cancel := context.WithCancel(context.WithoutCancel(c.msgParent))
	now := time.Now()
	r := &shardReader{
		c: c, lease: lease, shardID: lease.shardID, child: child,
		logger: c.logger.With(watermill.LogFields{"shard": lease.shardID}),
		ctx:    ctx, cancel: cancel, drainCh: make(chan struct{}), done: make(chan struct{}),
		results: make(chan ackResult, 1), idle: c.cfg.PollInterval, lastCheckpoint: now, startedAt: now,
	}
	if cp := lease.written; cp != CheckpointShardEnd {
		r.lastRead = cp
	}
	r.readAt.Store(int64(now.Sub(clockBase)))
	r.progressAt.Store(int64(now.Sub(clockBase)))
	pos := now
	if !lease.watermark.IsZero() {
		pos = lease.watermark
	}
	r.readPos.Store(pos.UnixNano())
	return r
}

// startDrain asks the reader to stop reading, wait for its page in flight and release
// the lease — to the worker to, or to nobody. Only the first call counts; it reports
// whether it was the first.
func (r *shardReader) startDrain(to string) (first bool) {
	r.drainOnce.Do(func() {
		r.handoffTo = to
		close(r.drainCh)
		first = true
	})
	return first
}

// stopReading tells the reader hook that the reader delivers nothing more; it is
// called before the lease's final write, so that a test's tracker sees the shard free
// by the time another worker can take it.
func (r *shardReader) stopReading() {
	r.stopOnce.Do(func() {
		if h := r.c.s.readerHook; h != nil {
			h(r.shardID, r.c.owner, false)
		}
	})
}

func (r *shardReader) run() {
	if h := r.c.s.readerHook; h != nil {
		h(r.shardID, r.c.owner, true)
	}
	r.c.s.addReader(r)
	defer func() {
		for _, p := range r.pages {
			if p.cancel != nil {
				p.cancel()
			}
		}
		r.cancel()
		r.c.s.removeReader(r)
		r.stopReading()
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
		if r.deliverHead() {
			continue // interrupted: drain, lost or fenced
		}
		r.advance()
		if r.ended && len(r.pages) == 0 {
			return r.finish()
		}
		now := time.Now()
		if r.canFetch() && !now.Before(r.nextPoll) {
			if reason, stop := r.fetch(); stop {
				return reason
			}
			continue
		}
		if r.dirty && now.Sub(r.lastCheckpoint) >= r.c.cfg.CheckpointInterval {
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
		r.readFailed(err)
		r.logger.Error("get shard iterator; will retry", err, watermill.LogFields{"after": after})
		if reason, stop := r.pause(r.c.cfg.ErrorBackoff); stop {
			return reason, true
		}
	}
}

// trimmedRestart restarts the shard at TRIM_HORIZON. When records were read or
// checkpointed before, the ones between the last of them and the trim horizon are
// gone: counted and logged as lost. When nothing was (a fresh stream, no checkpoint:
// its TRIM_HORIZON iterator moved on before the first read), nothing is lost.
func (r *shardReader) trimmedRestart(err error) {
	r.forceHorizon = true
	if r.lastRead == "" {
		r.logger.Info("the trim horizon moved before the shard's first read; reading again from TRIM_HORIZON (nothing was read, nothing is lost)",
			watermill.LogFields{"error": err.Error()})
		return
	}
	r.c.s.metrics.trimmedRestarts.Inc()
	r.logger.Error("records trimmed from the stream before they were read (lost); restarting the shard at TRIM_HORIZON",
		err, watermill.LogFields{"last_read": r.lastRead})
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

// canFetch reports whether the next GetRecords is due, as far as buffered pages go: the
// reader reads one page ahead of the one out, no more.
func (r *shardReader) canFetch() bool {
	return r.iterator != nil && len(r.pages) < 2
}

// nextWake is how long the loop may sleep when nothing arrives.
func (r *shardReader) nextWake(now time.Time) time.Duration {
	wake := now.Add(r.c.cfg.RenewInterval)
	if r.canFetch() && r.nextPoll.Before(wake) {
		wake = r.nextPoll
	}
	if len(r.pages) > 0 && r.pages[0].state != pageOut && r.pages[0].due.Before(wake) {
		wake = r.pages[0].due
	}
	if r.dirty {
		if cp := r.lastCheckpoint.Add(r.c.cfg.CheckpointInterval); cp.Before(wake) {
			wake = cp
		}
	}
	return max(wake.Sub(now), time.Millisecond)
}

// fetch calls GetRecords once and buffers what it returned as a page.
func (r *shardReader) fetch() (exitReason, bool) {
	cfg := &r.c.cfg
	start := time.Now()
	r.readingSince.Store(int64(start.Sub(clockBase)))
	out, err := r.c.s.streams.GetRecords(r.ctx, &dynamodbstreams.GetRecordsInput{ShardIterator: r.iterator, Limit: aws.Int32(int32(cfg.MaxRecords))})
	r.readingSince.Store(0)
	if err != nil {
		return r.readError(err)
	}
	r.iterator = out.NextShardIterator
	r.ended = r.iterator == nil
	p := &page{readStart: start, reachedEnd: r.ended || len(out.Records) < cfg.MaxRecords}
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
		if p.first == "" {
			p.first = seq
		}
		p.last = seq
		r.c.s.metrics.recordsRead.WithLabelValues(string(rec.EventName)).Inc()
		var appendedMs int64
		if at := rec.Dynamodb.ApproximateCreationDateTime; at != nil {
			p.lastCreated = *at
			appendedMs = at.UnixMilli()
		}
		d := r.c.s.decode(rec)
		switch {
		case d.skip != "":
			r.c.s.metrics.recordsSkipped.WithLabelValues(d.skip).Inc()
		case d.invalid != nil:
			p.invalid = append(p.invalid, invalidRecord{seq: seq, eventID: aws.ToString(rec.EventID), rawImage: d.rawImage, err: d.invalid})
		default:
			p.records = append(p.records, app.JournalRecord{Position: position(r.shardID, seq), AppendedAtMs: appendedMs, Item: d.item})
		}
	}
	if len(p.records) == 0 && len(p.invalid) == 0 {
		p.state = pageDone
	}
	r.pages = append(r.pages, p)
	if len(out.Records) == 0 {
		r.idle = min(2*r.idle, cfg.MaxPollInterval)
	} else {
		r.idle = cfg.PollInterval
	}
	r.nextPoll = start.Add(r.idle)
	r.readSucceeded(start, p)
	return 0, false
}

// readSucceeded updates the status after a successful GetRecords.
func (r *shardReader) readSucceeded(start time.Time, p *page) {
	now := int64(time.Since(clockBase))
	r.readAt.Store(now)
	r.progressAt.Store(now)
	r.lastErr.Store(nil)
	switch {
	case p.reachedEnd:
		r.readPos.Store(start.UnixNano())
	case !p.lastCreated.IsZero():
		r.readPos.Store(p.lastCreated.UnixNano())
	}
}

// readFailed records a failed read for the readiness check.
func (r *shardReader) readFailed(err error) {
	msg := err.Error()
	r.lastErr.Store(&msg)
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
	r.readFailed(err)
	r.logger.Error("get records; will retry", err, nil)
	r.nextPoll = time.Now().Add(r.c.cfg.ErrorBackoff)
	return 0, false
}

// deliverHead delivers the first page when it is due: its invalid records are
// quarantined first, then its records go out as one message (none: the page is done).
// It reports whether a send was interrupted (the loop then finds out why).
func (r *shardReader) deliverHead() (interrupted bool) {
	if len(r.pages) == 0 {
		return false
	}
	p := r.pages[0]
	now := time.Now()
	if (p.state != pageReady && p.state != pageWaiting) || p.due.After(now) {
		return false
	}
	for len(p.invalid) > 0 {
		if !r.quarantine(p.invalid[0]) {
			p.state, p.due = pageWaiting, now.Add(r.c.cfg.ErrorBackoff)
			return false
		}
		p.invalid = p.invalid[1:]
	}
	if len(p.records) == 0 {
		p.state = pageDone
		return false
	}
	return !r.send(p)
}

// pageMessage builds a fresh message for one delivery of p.
func (r *shardReader) pageMessage(p *page) (*message.Message, error) {
	md := message.Metadata{
		MetadataShardID:             r.shardID,
		MetadataSequenceNumber:      p.last,
		MetadataFirstSequenceNumber: p.first,
		app.MetaPosition:            position(r.shardID, p.last),
		app.MetaSource:              Source,
	}
	if !p.lastCreated.IsZero() {
		md[app.MetaAppendedAt] = strconv.FormatInt(p.lastCreated.UnixMilli(), 10)
	}
	return app.NewPageMessage(position(r.shardID, p.first), p.records, md)
}

// send delivers p once; false when the reader must stop instead.
func (r *shardReader) send(p *page) bool {
	if !r.lease.fresh(time.Now()) {
		return false
	}
	msg, err := r.pageMessage(p)
	if err != nil {
		r.logger.Error("build page message; will retry", err, watermill.LogFields{"first": p.first, "last": p.last})
		p.state, p.due = pageWaiting, time.Now().Add(r.c.cfg.ErrorBackoff)
		return true
	}
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
	p.deliveries++
	p.state, p.cancel = pageOut, cancel
	r.outstanding++
	r.c.s.metrics.pagesDelivered.Inc()
	delivery := p.deliveries
	go func() {
		select {
		case <-msg.Acked():
			r.results <- ackResult{p: p, delivery: delivery, acked: true}
		case <-msg.Nacked():
			r.results <- ackResult{p: p, delivery: delivery}
		case <-r.done:
		}
	}()
	return true
}

// handle applies the outcome of a delivery: an ack makes the page done; a nack
// delivers it again after a backoff that doubles with each nack, up to MaxNackBackoff.
func (r *shardReader) handle(res ackResult) {
	p := res.p
	if p.state != pageOut || p.deliveries != res.delivery {
		return
	}
	r.outstanding--
	p.cancel()
	p.cancel = nil
	if res.acked {
		p.state = pageDone
		r.progressAt.Store(int64(time.Since(clockBase)))
		return
	}
	p.nacks++
	r.c.s.metrics.pagesNacked.Inc()
	backoff := r.c.cfg.NackBackoff
	for i := 1; i < p.nacks && backoff < r.c.cfg.MaxNackBackoff; i++ {
		backoff *= 2
	}
	backoff = min(backoff, r.c.cfg.MaxNackBackoff)
	p.state, p.due = pageWaiting, time.Now().Add(backoff)
	r.logger.Info("page nacked; delivering it again after a backoff", watermill.LogFields{"first": p.first, "last": p.last,
		"records": len(p.records), "nacks": p.nacks, "backoff": backoff.String()})
}

// quarantine puts an invalid record into the quarantine; false if that failed (to be
// retried).
func (r *shardReader) quarantine(inv invalidRecord) bool {
	q := app.Quarantined{Source: Source, Key: position(r.shardID, inv.seq), Payload: inv.rawImage, At: time.Now().UTC(),
		Reason: fmt.Sprintf("stream record %s (shard %s, sequence number %s) is not a valid journal item: %v", inv.eventID, r.shardID, inv.seq, inv.err)}
	if err := r.c.s.quarantine.Quarantine(r.ctx, q); err != nil {
		r.logger.Error("quarantine a stream record; will retry", err, watermill.LogFields{"sequence_number": inv.seq})
		return false
	}
	r.c.s.metrics.quarantined.WithLabelValues(quarantineInvalid).Inc()
	r.logger.Info("stream record quarantined", watermill.LogFields{"sequence_number": inv.seq, "reason": q.Reason})
	return true
}

// advance drops the done pages at the head of the buffer, moving the checkpoint to the
// last record of the last of them and the watermark as they say.
func (r *shardReader) advance() {
	n := 0
	for n < len(r.pages) && r.pages[n].state == pageDone {
		p := r.pages[n]
		r.lease.setAcked(p.last, p.watermark(r.c.cfg.WatermarkMargin))
		r.dirty = true
		n++
	}
	if n == 0 {
		return
	}
	clear(r.pages[:n])
	r.pages = r.pages[n:]
}

// finish marks the shard read to its end.
func (r *shardReader) finish() exitReason {
	r.stopReading()
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
	r.stopReading()
	r.logger.Error("shard no longer in the stream; giving its lease up", err, nil)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), releaseTimeout)
	defer cancel()
	if err := r.lease.release(ctx, ""); err != nil {
		r.logger.Error("release lease", err, nil)
	}
	return exitGone
}

// drain waits up to DrainTimeout for the page out to be acked or nacked, then writes
// the checkpoint and releases the lease (to handoffTo).
func (r *shardReader) drain() exitReason {
	deadline := time.NewTimer(r.c.cfg.DrainTimeout)
	defer deadline.Stop()
wait:
	for r.outstanding > 0 {
		select {
		case res := <-r.results:
			r.handle(res)
		case <-deadline.C:
			r.logger.Info("drain timed out; the page in flight will be delivered again", watermill.LogFields{"in_flight": r.outstanding})
			break wait
		case <-r.ctx.Done():
			return exitLost
		}
	}
	r.advance()
	r.stopReading()
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
