package dynamodbstreams

// Tests against fakeStreams, an in-process fake of the DynamoDB Streams API, for what
// DynamoDB Local cannot do: split shards, expire iterators on command, trim records, and
// for lease timing that must be deterministic. Their names start with TestFakeStream_.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

func TestFakeStream_DeliversJournalItemsWithMetadata(t *testing.T) {
	e := newFakeEnv(t, 1)
	var want []string
	var shard string
	for i := range 5 {
		sh, seq := e.put("abc-123-def", i)
		shard = sh
		want = append(want, seq)
	}
	sub, _ := e.worker(fastConfig("w1"))
	waitFor(t, 5*time.Second, "5 deliveries", func() bool { return len(e.rec.all()) == 5 })

	got := e.rec.all()
	for i, d := range got {
		assert.Equal(t, want[i], d.seq, "delivery %d in order", i)
		assert.Equal(t, shard, d.shard)
		assert.Equal(t, shard+"/"+want[i], d.metadata.Get(app.MetaPosition))
		assert.Equal(t, Source, d.metadata.Get(app.MetaSource))
		assert.NotEmpty(t, d.metadata.Get(app.MetaAppendedAt))
		assert.Equal(t, "INSERT", d.metadata.Get(MetadataEventName))
		ev, err := domain.DecodeJournalItemJSON([]byte(d.payload))
		require.NoError(t, err, "payload is a journal item")
		assert.Equal(t, "abc-123-def", ev.SessionID)
		assert.Equal(t, "SESSION#abc-123-def/"+ev.SK, d.uuid)
		assert.Equal(t, "SESSION#abc-123-def", d.metadata.Get(MetadataPK))
	}
	require.NoError(t, sub.Close())
	l := e.leases.lease(e.arn, shard)
	assert.Equal(t, want[4], l.Checkpoint, "Close writes the final checkpoint")
	assert.Empty(t, l.Owner, "Close releases the lease")
}

// A shard splits while its records are in flight: the children are read only after the
// parent's lease says SHARD_END, by whichever worker takes them, and each session's
// events arrive in the order they were written.
func TestFakeStream_ShardSplitLineage(t *testing.T) {
	e := newFakeEnv(t, 1)
	parent := ""
	for s := range 6 {
		for i := range 3 {
			parent, _ = e.put(fmt.Sprintf("s%d", s), i)
		}
	}
	gate := make(chan struct{})
	var childEarly atomic.Int32
	e.rec.setDecide(func(d delivery, _ *message.Message) answer {
		if d.shard == parent {
			<-gate // hold the parent's messages until the children have records
			return ack
		}
		if !e.leases.lease(e.arn, parent).Finished() {
			childEarly.Add(1)
		}
		return ack
	})
	e.worker(fastConfig("w1"))
	e.worker(fastConfig("w2"))
	waitFor(t, 5*time.Second, "the first parent message", func() bool { return len(e.rec.all()) == 1 })

	c1, c2 := e.streams.Split(e.table, parent)
	for s := range 6 {
		for i := 3; i < 6; i++ {
			e.put(fmt.Sprintf("s%d", s), i)
		}
	}
	// Give the workers time to discover the children while the parent is held.
	waitFor(t, 5*time.Second, "the child leases", func() bool {
		return e.leases.lease(e.arn, c1).ShardID != "" && e.leases.lease(e.arn, c2).ShardID != ""
	})
	close(gate)
	waitFor(t, 10*time.Second, "36 deliveries", func() bool { return len(e.rec.all()) == 36 })

	assert.Zero(t, childEarly.Load(), "child records delivered before the parent was finished")
	assert.True(t, e.leases.lease(e.arn, parent).Finished())
	assert.False(t, e.leases.lease(e.arn, parent).EndedAt.IsZero())
	order := map[string][]string{}
	for _, d := range e.rec.all() {
		ev, err := domain.DecodeJournalItemJSON([]byte(d.payload))
		require.NoError(t, err)
		order[ev.SessionID] = append(order[ev.SessionID], ev.SK)
	}
	for sid, sks := range order {
		assert.Len(t, sks, 6, sid)
		assert.True(t, slices.IsSorted(sks), "session %s events in write order: %v", sid, sks)
	}
	for _, n := range e.rec.distinct() {
		assert.Equal(t, 1, n, "delivered once")
	}
}

// A parent that is gone from the stream (trimmed away before it was read to its end)
// does not hold its children back.
func TestFakeStream_ParentGoneFromStreamChildrenRead(t *testing.T) {
	e := newFakeEnv(t, 1)
	parent, _ := e.put("a", 0)
	e.put("a", 1)
	// A lease of the parent exists, unfinished, checkpointed at nothing.
	_, err := e.leases.CreateLease(t.Context(), e.arn, Lease{ShardID: parent})
	require.NoError(t, err)
	e.streams.Split(e.table, parent)
	e.put("a", 2)
	e.put("b", 3)
	e.streams.Drop(e.table, parent)

	e.worker(fastConfig("w1"))
	waitFor(t, 5*time.Second, "the children's records", func() bool { return len(e.rec.all()) == 2 })
	for _, d := range e.rec.all() {
		assert.NotEqual(t, parent, d.shard)
	}
}

// A second worker balances the leases by asking the first for them one at a time; each
// handoff drains and checkpoints first, so nothing is delivered twice.
func TestFakeStream_LeaseStealingBalances(t *testing.T) {
	e := newFakeEnv(t, 4)
	for s := range 40 {
		e.put(fmt.Sprintf("s%d", s), 0)
	}
	_, regA := e.worker(fastConfig("A"))
	waitFor(t, 5*time.Second, "A reading 4 shards and 40 deliveries", func() bool {
		return len(e.readers.readers()["A/1"]) == 4 && len(e.rec.all()) == 40
	})
	_, regB := e.worker(fastConfig("B"))
	waitFor(t, 10*time.Second, "A and B reading 2 shards each", func() bool {
		r := e.readers.readers()
		return len(r["A/1"]) == 2 && len(r["B/1"]) == 2
	})
	for s := range 40 {
		e.put(fmt.Sprintf("s%d", s), 1)
	}
	waitFor(t, 10*time.Second, "80 deliveries", func() bool { return len(e.rec.distinct()) == 80 })
	for k, n := range e.rec.distinct() {
		assert.Equal(t, 1, n, "%s delivered once (handoffs drain and checkpoint)", k)
	}
	assert.Equal(t, 2.0, counterValue(t, regB, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": leaseHandoffRequested}))
	assert.Equal(t, 2.0, counterValue(t, regA, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": leaseHandedOff}))
	// Stable: nobody asks again.
	before := e.readers.started("A/1") + e.readers.started("B/1")
	e.waitSyncs(10)
	assert.Equal(t, before, e.readers.started("A/1")+e.readers.started("B/1"))
}

// A crashed worker's leases are taken over once they have not been renewed for
// LeaseDuration as the survivor sees it, within LeaseDuration + 2 × ShardSyncInterval,
// and nothing is lost.
func TestFakeStream_LeaseExpiryTakeover(t *testing.T) {
	e := newFakeEnv(t, 3)
	for s := range 30 {
		e.put(fmt.Sprintf("s%d", s), 0)
	}
	cfgA, cfgB := fastConfig("A"), fastConfig("B")
	a, _ := e.worker(cfgA)
	waitFor(t, 5*time.Second, "A reading 3 shards", func() bool { return len(e.readers.readers()["A/1"]) == 3 })
	_, regB := e.worker(cfgB)
	waitFor(t, 10*time.Second, "B reading a shard and 30 deliveries", func() bool {
		return len(e.readers.readers()["B/1"]) == 1 && len(e.rec.distinct()) == 30
	})

	a.kill()
	killed := time.Now()
	for s := range 30 {
		e.put(fmt.Sprintf("s%d", s), 1)
	}
	waitFor(t, 10*time.Second, "B reading all 3 shards", func() bool { return len(e.readers.readers()["B/1"]) == 3 })
	took := time.Since(killed)
	bound := cfgB.LeaseDuration + 2*cfgB.ShardSyncInterval + cfgA.RenewInterval
	assert.LessOrEqual(t, took, bound+200*time.Millisecond, "takeover within LeaseDuration + 2 × ShardSyncInterval (+ the last renewal)")
	assert.GreaterOrEqual(t, took, cfgB.LeaseDuration-cfgA.RenewInterval, "not before the lease could have expired")
	t.Logf("takeover after %s (bound %s)", took, bound)
	waitFor(t, 10*time.Second, "60 distinct deliveries", func() bool { return len(e.rec.distinct()) == 60 })
	assert.Equal(t, 2.0, counterValue(t, regB, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": leaseTakenExpired}))
}

// A worker whose renewal finds the lease taken stops reading that shard at once, and
// writes nothing more; when the new owner lets the lease expire, it takes it back.
func TestFakeStream_LostLeaseStopsReadingAtOnce(t *testing.T) {
	e := newFakeEnv(t, 1)
	shard, _ := e.put("a", 0)
	cfg := fastConfig("A")
	_, reg := e.worker(cfg)
	waitFor(t, 5*time.Second, "A reading", func() bool { return len(e.readers.readers()["A/1"]) == 1 && len(e.rec.all()) == 1 })

	// Another worker takes the lease by force (as if it had wrongly judged it expired).
	for {
		l := e.leases.lease(e.arn, shard)
		_, err := e.leases.UpdateLease(t.Context(), e.arn, shard, LeaseUpdate{ExpectOwner: l.Owner, ExpectCounter: l.Counter, NewOwner: "thief"})
		if err == nil {
			break
		}
		require.ErrorIs(t, err, ErrLeaseConflict)
	}
	stolen := time.Now()
	stolenLease := e.leases.lease(e.arn, shard)
	waitFor(t, 2*time.Second, "A to stop reading", func() bool { return len(e.readers.readers()["A/1"]) == 0 })
	assert.LessOrEqual(t, time.Since(stolen), cfg.RenewInterval+200*time.Millisecond, "stopped at the next renewal")
	e.put("a", 1)
	assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": leaseLost}))
	assert.Equal(t, stolenLease, e.leases.lease(e.arn, shard), "A wrote nothing after losing the lease")

	// The thief never renews: after LeaseDuration A takes the lease back and goes on.
	waitFor(t, 5*time.Second, "the record written after the theft", func() bool { return len(e.rec.distinct()) == 2 })
	assert.GreaterOrEqual(t, time.Since(stolen), cfg.LeaseDuration, "not before the thief's lease expired")
	assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": leaseTakenExpired}))
}

// Expired iterators are replaced by one after the last record read: nothing lost,
// nothing repeated.
func TestFakeStream_IteratorExpiry(t *testing.T) {
	e := newFakeEnv(t, 1)
	for i := range 10 {
		e.put("a", i)
	}
	_, reg := e.worker(fastConfig("A"))
	waitFor(t, 5*time.Second, "10 deliveries", func() bool { return len(e.rec.all()) == 10 })
	e.streams.ExpireIterators()
	for i := 10; i < 20; i++ {
		e.put("a", i)
	}
	waitFor(t, 5*time.Second, "20 deliveries", func() bool { return len(e.rec.all()) >= 20 })
	assert.Len(t, e.rec.distinct(), 20)
	assert.Len(t, e.rec.all(), 20, "no record delivered twice")
	assert.GreaterOrEqual(t, counterValue(t, reg, "agentwatch_dynamodbstreams_iterator_renewals_total", nil), 1.0)
}

func TestFakeStream_TrimmedDataRestartsAtTrimHorizon(t *testing.T) {
	t.Run("checkpoint behind the trim horizon", func(t *testing.T) {
		e := newFakeEnv(t, 1)
		var shard string
		var seqs []string
		for i := range 10 {
			var seq string
			shard, seq = e.put("a", i)
			seqs = append(seqs, seq)
		}
		first, _ := e.worker(fastConfig("A"))
		waitFor(t, 5*time.Second, "10 deliveries", func() bool { return len(e.rec.all()) == 10 })
		require.NoError(t, first.Close())
		require.Equal(t, seqs[9], e.leases.lease(e.arn, shard).Checkpoint)
		for i := 10; i < 20; i++ {
			_, seq := e.put("a", i)
			seqs = append(seqs, seq)
		}
		e.streams.Trim(e.table, shard, 15)

		_, reg := e.worker(fastConfig("B"))
		waitFor(t, 5*time.Second, "the 5 records left", func() bool { return len(e.rec.all()) == 15 })
		var got []string
		for _, d := range e.rec.all()[10:] {
			got = append(got, d.seq)
		}
		assert.Equal(t, seqs[15:], got)
		assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_trimmed_restarts_total", nil))
	})
	t.Run("iterator behind the trim horizon", func(t *testing.T) {
		e := newFakeEnv(t, 1)
		var shard string
		for i := range 5 {
			shard, _ = e.put("a", i)
		}
		_, reg := e.worker(fastConfig("A"))
		waitFor(t, 5*time.Second, "5 deliveries", func() bool { return len(e.rec.all()) == 5 })
		var kept []string
		e.streams.Atomically(func() {
			for i := 5; i < 10; i++ {
				_, seq := e.streams.putLocked(e.table, stypes.OperationTypeInsert, journalImage("a", i))
				kept = append(kept, seq)
			}
			kept = kept[3:]
			e.streams.trimLocked(e.table, shard, 8) // the reader's iterator points at record 6
		})
		waitFor(t, 5*time.Second, "the 2 records left", func() bool { return len(e.rec.all()) == 7 })
		assert.Equal(t, kept, []string{e.rec.all()[5].seq, e.rec.all()[6].seq})
		assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_trimmed_restarts_total", nil))
	})
}

// With several messages in flight, a checkpoint covers only the contiguous prefix of
// acked records: acks out of order wait for the gap to fill.
func TestFakeStream_OutOfOrderAcksCheckpointContiguousPrefix(t *testing.T) {
	e := newFakeEnv(t, 1)
	var shard string
	var seqs []string
	for i := range 3 {
		var seq string
		shard, seq = e.put("a", i)
		seqs = append(seqs, seq)
	}
	var mu sync.Mutex
	held := map[string]*message.Message{}
	e.rec.setDecide(func(d delivery, msg *message.Message) answer {
		mu.Lock()
		held[d.seq] = msg
		mu.Unlock()
		return hold
	})
	heldMsg := func(seq string) *message.Message {
		mu.Lock()
		defer mu.Unlock()
		return held[seq]
	}
	cfg := fastConfig("A")
	cfg.MaxInFlight = 3
	first, _ := e.worker(cfg)
	waitFor(t, 5*time.Second, "3 messages in flight", func() bool { return len(e.rec.all()) == 3 })
	heldMsg(seqs[1]).Ack()
	heldMsg(seqs[2]).Ack()
	require.NoError(t, first.Close()) // the drain times out on the first message
	assert.Empty(t, e.leases.lease(e.arn, shard).Checkpoint, "no checkpoint past an unacked record")

	cfg.WorkerID = "B"
	e.worker(cfg)
	waitFor(t, 5*time.Second, "all 3 delivered again", func() bool { return len(e.rec.all()) == 6 })
	heldMsg(seqs[2]).Ack()
	heldMsg(seqs[0]).Ack()
	waitFor(t, 5*time.Second, "checkpoint at the first record", func() bool { return e.leases.lease(e.arn, shard).Checkpoint == seqs[0] })
	heldMsg(seqs[1]).Ack()
	waitFor(t, 5*time.Second, "checkpoint at the last record", func() bool { return e.leases.lease(e.arn, shard).Checkpoint == seqs[2] })
}

// A nacked message is delivered again after NackBackoff, and holds up only its own shard.
func TestFakeStream_NackRedeliversWithoutBlockingOtherShards(t *testing.T) {
	e := newFakeEnv(t, 2)
	byShard := map[string][]string{}
	for s := range 20 {
		sh, seq := e.put(fmt.Sprintf("s%d", s), 0)
		byShard[sh] = append(byShard[sh], seq)
	}
	require.Len(t, byShard, 2, "records on both shards")
	shards := slices.Sorted(func(yield func(string) bool) {
		for k := range byShard {
			if !yield(k) {
				return
			}
		}
	})
	stuck, free := shards[0], shards[1]
	var release atomic.Bool
	e.rec.setDecide(func(d delivery, _ *message.Message) answer {
		if d.shard == stuck && !release.Load() {
			return nack
		}
		return ack
	})
	cfg := fastConfig("A")
	cfg.MaxRetries = 1000
	e.worker(cfg)
	waitFor(t, 5*time.Second, "the free shard's records", func() bool {
		n := 0
		for _, d := range e.rec.all() {
			if d.shard == free {
				n++
			}
		}
		return n == len(byShard[free])
	})
	for _, d := range e.rec.all() {
		if d.shard == stuck {
			assert.Equal(t, byShard[stuck][0], d.seq, "only the nacked record of the stuck shard is delivered (in order)")
		}
	}
	release.Store(true)
	waitFor(t, 5*time.Second, "the stuck shard's records", func() bool { return len(e.rec.distinct()) == 20 })
}

// A record nacked more than MaxRetries times goes to the quarantine, and the shard moves
// on; its checkpoint passes it.
func TestFakeStream_NackedTooOftenIsQuarantined(t *testing.T) {
	e := newFakeEnv(t, 1)
	var shard, poison, last string
	for i := range 3 {
		var seq string
		shard, seq = e.put("a", i)
		if i == 1 {
			poison = seq
		}
		last = seq
	}
	e.rec.setDecide(func(d delivery, _ *message.Message) answer {
		if d.seq == poison {
			return nack
		}
		return ack
	})
	cfg := fastConfig("A")
	cfg.MaxRetries = 2
	_, reg := e.worker(cfg)
	waitFor(t, 5*time.Second, "the checkpoint past the poison record", func() bool { return e.leases.lease(e.arn, shard).Checkpoint == last })
	assert.Equal(t, 3, e.rec.distinct()[shard+"/"+poison], "delivered 1 + MaxRetries times")
	q := e.quarantine.all()
	require.Len(t, q, 1)
	assert.Equal(t, Source, q[0].Source)
	assert.Equal(t, shard+"/"+poison, q[0].Key)
	assert.Contains(t, q[0].Reason, "nacked 3 times")
	_, err := domain.DecodeJournalItemJSON([]byte(q[0].Payload))
	assert.NoError(t, err, "the payload is the journal item")
	assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_quarantined_total", map[string]string{"reason": quarantineRetries}))
}

// A record whose image is not a journal item is quarantined with the reason and the
// image in DynamoDB JSON; REMOVE records are skipped; neither holds the shard up.
func TestFakeStream_InvalidImagesQuarantinedRemovesSkipped(t *testing.T) {
	e := newFakeEnv(t, 1)
	e.put("a", 0)
	bad := journalImage("a", 1)
	delete(bad, "Status")
	bad["Timestamp"] = &stypes.AttributeValueMemberN{Value: "17"}
	shard, badSeq := e.streams.Put(e.table, stypes.OperationTypeInsert, bad)
	e.streams.Put(e.table, stypes.OperationTypeRemove, journalImage("a", 0))
	e.put("a", 2)
	_, last := e.streams.Put(e.table, stypes.OperationTypeModify, journalImage("a", 3))

	_, reg := e.worker(fastConfig("A"))
	waitFor(t, 5*time.Second, "the checkpoint at the last record", func() bool { return e.leases.lease(e.arn, shard).Checkpoint == last })
	got := e.rec.all()
	require.Len(t, got, 3)
	assert.Equal(t, "MODIFY", got[2].metadata.Get(MetadataEventName))
	q := e.quarantine.all()
	require.Len(t, q, 1)
	assert.Equal(t, shard+"/"+badSeq, q[0].Key)
	assert.Contains(t, q[0].Reason, "Status")
	assert.Contains(t, q[0].Reason, "Timestamp")
	assert.Contains(t, q[0].Payload, `"Timestamp":{"N":"17"}`)
	_, err := domain.DecodeJournalItemDynamoJSON([]byte(q[0].Payload))
	assert.ErrorIs(t, err, domain.ErrInvalid, "the quarantined payload is the DynamoDB JSON of the image")
	assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_quarantined_total", map[string]string{"reason": quarantineInvalid}))
	assert.Equal(t, 1.0, counterValue(t, reg, "agentwatch_dynamodbstreams_records_skipped_total", map[string]string{"reason": skipRemove}))
	assert.Equal(t, 5.0, counterValue(t, reg, "agentwatch_dynamodbstreams_records_read_total", nil))
}

// GetRecords is called at most once per PollInterval per shard, and an idle shard is
// polled less often, down to MaxPollInterval.
func TestFakeStream_PollRateBounded(t *testing.T) {
	e := newFakeEnv(t, 1)
	var shard string
	for i := range 500 {
		shard, _ = e.put(fmt.Sprintf("s%d", i%50), i)
	}
	cfg := fastConfig("A")
	cfg.MaxRecords = 100
	cfg.MaxPollInterval = 800 * time.Millisecond
	e.worker(cfg)
	waitFor(t, 10*time.Second, "500 deliveries", func() bool { return len(e.rec.all()) == 500 })
	waitFor(t, 10*time.Second, "idle polls to back off", func() bool {
		reads := e.streams.Reads(shard)
		return len(reads) >= 2 && reads[len(reads)-1].Sub(reads[len(reads)-2]) >= 790*time.Millisecond
	})
	reads := e.streams.Reads(shard)
	for i := 1; i < len(reads); i++ {
		assert.GreaterOrEqual(t, reads[i].Sub(reads[i-1]), cfg.PollInterval, "gap before read %d", i)
	}
}

func TestFakeStream_DescribeStreamPaginated(t *testing.T) {
	e := newFakeEnv(t, 5)
	e.streams.pageSize = 2
	for s := range 30 {
		e.put(fmt.Sprintf("s%d", s), 0)
	}
	e.worker(fastConfig("A"))
	waitFor(t, 5*time.Second, "30 deliveries from 5 shards", func() bool { return len(e.rec.all()) == 30 })
	shards := map[string]bool{}
	for _, d := range e.rec.all() {
		shards[d.shard] = true
	}
	assert.Len(t, shards, 5)
}

// Close stops reading, waits for the messages in flight, writes the final checkpoints,
// releases the leases and closes the channel; it is idempotent.
func TestFakeStream_CloseDrainsThenReleases(t *testing.T) {
	e := newFakeEnv(t, 1)
	shard, seq := e.put("a", 0)
	inFlight := make(chan *message.Message, 1)
	e.rec.setDecide(func(_ delivery, msg *message.Message) answer {
		inFlight <- msg
		return hold
	})
	cfg := fastConfig("A")
	cfg.DrainTimeout = 5 * time.Second
	sub, err := newSubscriber(cfg, Ports{Streams: e.streams, Tables: e.streams, Leases: e.leases}, e.quarantine, nil, nil, decodeJournalRecord)
	require.NoError(t, err)
	ch, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	e.rec.consume("A", ch)
	msg := <-inFlight

	closed := make(chan struct{})
	go func() {
		assert.NoError(t, sub.Close())
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("Close returned with a message in flight")
	case <-msg.Context().Done():
		t.Fatal("message context canceled during the drain")
	case <-time.After(100 * time.Millisecond): // the drain is waiting
	}
	msg.Ack()
	<-closed
	e.rec.wg.Wait() // the channel was closed
	l := e.leases.lease(e.arn, shard)
	assert.Equal(t, seq, l.Checkpoint)
	assert.Empty(t, l.Owner)
	require.NoError(t, sub.Close())
	_, err = sub.Subscribe(t.Context(), "journal")
	assert.Error(t, err)
}

// Canceling the Subscribe ctx ends that subscription alike: channel closed, leases
// released.
func TestFakeStream_ContextCancelEndsSubscription(t *testing.T) {
	e := newFakeEnv(t, 2)
	e.put("a", 0)
	e.put("b", 0)
	sub, err := newSubscriber(fastConfig("A"), Ports{Streams: e.streams, Tables: e.streams, Leases: e.leases}, e.quarantine, nil, nil, decodeJournalRecord)
	require.NoError(t, err)
	defer sub.Close()
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := sub.Subscribe(ctx, "journal")
	require.NoError(t, err)
	e.rec.consume("A", ch)
	waitFor(t, 5*time.Second, "2 deliveries", func() bool { return len(e.rec.all()) == 2 })
	cancel()
	e.rec.wg.Wait()
	leases, err := e.leases.ListLeases(t.Context(), e.arn)
	require.NoError(t, err)
	require.Len(t, leases, 2)
	for _, l := range leases {
		assert.Empty(t, l.Owner)
		assert.NotEmpty(t, l.Checkpoint)
	}
}

// Three workers share six shards; one crashes; the other two take its shards over
// within the lease timeout, and every event's effect lands exactly once (the effect is
// idempotent: a set keyed by the item's keys, so redeliveries after the crash — records
// acked after the crashed worker's last checkpoint — change nothing).
func TestFakeStream_ThreeWorkersOneCrashes(t *testing.T) {
	e := newFakeEnv(t, 6)
	var mu sync.Mutex
	effects := map[string]int{}
	e.rec.setDecide(func(d delivery, _ *message.Message) answer {
		mu.Lock()
		defer mu.Unlock()
		if effects[d.uuid] == 0 {
			effects[d.uuid] = 1
		}
		return ack
	})
	var workers []*Subscriber
	for _, w := range []string{"A", "B", "C"} {
		sub, _ := e.worker(fastConfig(w))
		workers = append(workers, sub)
	}
	waitFor(t, 10*time.Second, "2 shards each", func() bool {
		r := e.readers.readers()
		return len(r["A/1"]) == 2 && len(r["B/1"]) == 2 && len(r["C/1"]) == 2
	})
	stop := make(chan struct{})
	written := make(chan int)
	go func() {
		n := 0
		defer func() { written <- n }()
		pace := time.NewTicker(2 * time.Millisecond) // a steady write rate
		defer pace.Stop()
		for {
			select {
			case <-stop:
				return
			case <-pace.C:
			}
			e.put(fmt.Sprintf("s%d", n%60), n/60)
			n++
		}
	}()
	waitFor(t, 5*time.Second, "some deliveries", func() bool { return len(e.rec.all()) > 100 })
	workers[0].kill()
	killed := time.Now()
	waitFor(t, 10*time.Second, "B and C reading all 6 shards", func() bool {
		r := e.readers.readers()
		return len(r["B/1"])+len(r["C/1"]) == 6
	})
	took := time.Since(killed)
	cfg := fastConfig("B")
	assert.LessOrEqual(t, took, cfg.LeaseDuration+2*cfg.ShardSyncInterval+cfg.RenewInterval+200*time.Millisecond)
	close(stop)
	n := <-written
	waitFor(t, 10*time.Second, "every record delivered", func() bool { return len(e.rec.distinct()) == n })
	mu.Lock()
	assert.Len(t, effects, n, "each event's effect once")
	mu.Unlock()
	dups := len(e.rec.all()) - n
	t.Logf("%d records, %d redelivered after the crash, takeover after %s", n, dups, took)
}

func TestFakeStream_SubscribeFailsWithoutNewImages(t *testing.T) {
	f := newFakeStreams()
	sub, err := newSubscriber(fastConfig("A"), Ports{Streams: f, Tables: f, Leases: newMemLeaseStore()}, &memQuarantine{}, nil, nil, decodeJournalRecord)
	require.NoError(t, err)
	defer sub.Close()
	_, err = sub.Subscribe(t.Context(), "journal")
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "describe table journal"), err.Error())
}
