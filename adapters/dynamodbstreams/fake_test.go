package dynamodbstreams

// Tests against fakeStreams, an in-process fake of the DynamoDB Streams API, for what
// DynamoDB Local cannot do: split shards, expire iterators on command, trim records, and
// for lease timing that must be deterministic. Their names start with TestFakeStream_.

import (
	"context"
	"fmt"
	"maps"
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

// What one GetRecords call returns is one page message: its journal items in order,
// with the page's metadata, and one Ack checkpoints the page's last record.
func TestFakeStream_DeliversOnePageMessagePerGetRecords(t *testing.T) {
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

	pages := e.rec.allPages()
	require.Len(t, pages, 1, "one GetRecords, one page")
	md := pages[0].metadata
	assert.Equal(t, "1", md.Get(app.MetaPage))
	assert.Equal(t, "5", md.Get(app.MetaRecords))
	assert.Equal(t, shard+"/"+want[4], md.Get(app.MetaPosition), "the position of the page's last record")
	assert.Equal(t, shard+"/"+want[0], pages[0].uuid, "a redelivered page keeps its uuid: its first position")
	assert.Equal(t, Source, md.Get(app.MetaSource))
	assert.NotEmpty(t, md.Get(app.MetaAppendedAt))
	assert.Equal(t, shard, md.Get(MetadataShardID))
	assert.Equal(t, want[4], md.Get(MetadataSequenceNumber))
	assert.Equal(t, want[0], md.Get(MetadataFirstSequenceNumber))
	for i, d := range e.rec.all() {
		assert.Equal(t, want[i], d.seq, "record %d in order", i)
		ev, err := domain.DecodeJournalItemJSON([]byte(d.payload))
		require.NoError(t, err, "the page's items are journal items")
		assert.Equal(t, "abc-123-def", ev.SessionID)
		assert.Equal(t, "SESSION#abc-123-def/"+ev.SK, d.uuid)
	}
	require.NoError(t, sub.Close())
	l := e.leases.lease(e.arn, shard)
	assert.Equal(t, want[4], l.Checkpoint, "Close writes the final checkpoint")
	assert.Empty(t, l.Owner, "Close releases the lease")
}

// MaxRecords bounds a page: a backlog comes in pages of at most MaxRecords, in order,
// each page delivered only once the one before it was acked.
func TestFakeStream_PagesBoundedByMaxRecords(t *testing.T) {
	e := newFakeEnv(t, 1)
	var want []string
	for i := range 25 {
		_, seq := e.put(fmt.Sprintf("s%d", i%4), i)
		want = append(want, seq)
	}
	var out atomic.Int32
	e.rec.setDecide(func(pageDelivery, *message.Message) answer {
		if out.Add(1) != 1 {
			t.Error("a page delivered while another was out")
		}
		time.Sleep(5 * time.Millisecond) // a consumer at work
		out.Add(-1)
		return ack
	})
	cfg := fastConfig("A")
	cfg.MaxRecords = 10
	e.worker(cfg)
	waitFor(t, 10*time.Second, "25 deliveries", func() bool { return len(e.rec.all()) == 25 })
	var sizes []int
	for _, p := range e.rec.allPages() {
		sizes = append(sizes, len(p.records))
	}
	assert.Equal(t, []int{10, 10, 5}, sizes)
	var got []string
	for _, d := range e.rec.all() {
		got = append(got, d.seq)
	}
	assert.Equal(t, want, got, "in order, once each")
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
	e.rec.setDecide(func(d pageDelivery, _ *message.Message) answer {
		if d.shard == parent {
			<-gate // hold the parent's page until the children have records
			return ack
		}
		if !e.leases.lease(e.arn, parent).Finished() {
			childEarly.Add(1)
		}
		return ack
	})
	e.worker(fastConfig("w1"))
	e.worker(fastConfig("w2"))
	waitFor(t, 5*time.Second, "the parent's page", func() bool { return len(e.rec.allPages()) == 1 })

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
	// A fresh stream, no checkpoint: the trim horizon moves between GetShardIterator
	// and the first GetRecords. Nothing was read, so nothing is lost: no restart is
	// counted (the runbook reads trimmed_restarts_total as data loss).
	t.Run("fresh stream trimmed before the first read", func(t *testing.T) {
		e := newFakeEnv(t, 1)
		var shard string
		var seqs []string
		for i := range 6 {
			var seq string
			shard, seq = e.put("a", i)
			seqs = append(seqs, seq)
		}
		var first atomic.Bool
		e.streams.SetBeforeRead(func(id string) error {
			if id == shard && !first.Swap(true) {
				e.streams.trimLocked(e.table, shard, 2) // the iterator points at record 0
			}
			return nil
		})
		_, reg := e.worker(fastConfig("A"))
		waitFor(t, 5*time.Second, "the 4 records left", func() bool { return len(e.rec.all()) == 4 })
		var got []string
		for _, d := range e.rec.all() {
			got = append(got, d.seq)
		}
		assert.Equal(t, seqs[2:], got)
		assert.Zero(t, counterValue(t, reg, "agentwatch_dynamodbstreams_trimmed_restarts_total", nil), "nothing read, nothing lost")
	})
}

// One page is out at a time: the next page of the shard waits for the Ack of the one
// out, and the checkpoint moves only with an Ack. A page out when the worker closes
// (drain timed out) is delivered again, whole, to the next owner.
func TestFakeStream_OnePageOutCheckpointOnAck(t *testing.T) {
	e := newFakeEnv(t, 1)
	var shard string
	for i := range 3 {
		shard, _ = e.put("a", i)
	}
	held := make(chan *message.Message, 10)
	e.rec.setDecide(func(_ pageDelivery, msg *message.Message) answer {
		held <- msg
		return hold
	})
	cfg := fastConfig("A")
	first, _ := e.worker(cfg)
	msg := <-held
	e.put("a", 3) // the next page
	e.waitSyncs(3)
	assert.Len(t, e.rec.allPages(), 1, "no page while one is out")
	assert.Empty(t, e.leases.lease(e.arn, shard).Checkpoint, "no checkpoint before the Ack")
	require.NoError(t, first.Close()) // the drain times out
	assert.Empty(t, e.leases.lease(e.arn, shard).Checkpoint, "no checkpoint past an unacked page")
	msg.Ack() // too late: the drain gave the page up

	cfg.WorkerID = "B"
	e.worker(cfg)
	again := <-held
	pages := e.rec.allPages()
	require.Len(t, pages, 2)
	assert.Equal(t, pages[0].uuid, pages[1].uuid, "the same page, whole")
	assert.Len(t, pages[1].records, 4, "with what was written since: the page is what the new owner's read returned")
	require.True(t, again.Ack())
	waitFor(t, 5*time.Second, "the checkpoint at the page's last record", func() bool {
		return e.leases.lease(e.arn, shard).Checkpoint == pages[1].last()
	})
}

// A nacked page is delivered again after NackBackoff, and holds up only its own shard.
func TestFakeStream_NackRedeliversWithoutBlockingOtherShards(t *testing.T) {
	e := newFakeEnv(t, 2)
	byShard := map[string][]string{}
	for s := range 20 {
		sh, seq := e.put(fmt.Sprintf("s%d", s), 0)
		byShard[sh] = append(byShard[sh], seq)
	}
	require.Len(t, byShard, 2, "records on both shards")
	shards := slices.Sorted(maps.Keys(byShard))
	stuck, free := shards[0], shards[1]
	var release atomic.Bool
	e.rec.setDecide(func(p pageDelivery, _ *message.Message) answer {
		if p.shard == stuck && !release.Load() {
			return nack
		}
		return ack
	})
	cfg := fastConfig("A")
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
	waitFor(t, 5*time.Second, "the stuck shard's page delivered again", func() bool {
		n := 0
		for _, p := range e.rec.allPages() {
			if p.shard == stuck {
				n++
			}
		}
		return n >= 2
	})
	for _, p := range e.rec.allPages() {
		if p.shard == stuck {
			assert.Equal(t, byShard[stuck][0], p.first(), "only the nacked page of the stuck shard is delivered (in order)")
		}
	}
	release.Store(true)
	waitFor(t, 5*time.Second, "the stuck shard's records", func() bool { return len(e.rec.distinct()) == 20 })
}

// A page nacked again and again is delivered again after a backoff that doubles with
// each nack up to MaxNackBackoff; it is never quarantined or skipped (its records are
// the journal; the consumer quarantines single poison records itself), and its Ack at
// last checkpoints it.
func TestFakeStream_NackedPageBacksOffAndIsNeverGivenUp(t *testing.T) {
	e := newFakeEnv(t, 1)
	var shard, last string
	for i := range 3 {
		shard, last = e.put("a", i)
	}
	const nacks = 7
	var n atomic.Int32
	e.rec.setDecide(func(pageDelivery, *message.Message) answer {
		if n.Add(1) <= nacks {
			return nack
		}
		return ack
	})
	cfg := fastConfig("A")
	cfg.NackBackoff, cfg.MaxNackBackoff = 20*time.Millisecond, 100*time.Millisecond
	_, reg := e.worker(cfg)
	waitFor(t, 10*time.Second, "the checkpoint at the page's last record", func() bool { return e.leases.lease(e.arn, shard).Checkpoint == last })
	pages := e.rec.allPages()
	require.Len(t, pages, nacks+1)
	want := []time.Duration{20, 40, 80, 100, 100, 100, 100}
	for i := 1; i < len(pages); i++ {
		assert.Equal(t, pages[0].uuid, pages[i].uuid)
		gap := pages[i].records[0].at.Sub(pages[i-1].records[0].at)
		assert.GreaterOrEqual(t, gap, want[i-1]*time.Millisecond, "backoff before delivery %d", i+1)
	}
	assert.Empty(t, e.quarantine.all(), "a page is never quarantined")
	assert.Equal(t, float64(nacks), counterValue(t, reg, "agentwatch_dynamodbstreams_pages_nacked_total", nil))
	assert.Equal(t, float64(nacks+1), counterValue(t, reg, "agentwatch_dynamodbstreams_pages_delivered_total", nil))
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
	require.Len(t, got, 3, "the valid records, in one page")
	require.Len(t, e.rec.allPages(), 1)
	assert.Equal(t, last, got[2].seq, "the MODIFY record too")
	for _, d := range got {
		assert.NotEqual(t, badSeq, d.seq, "the invalid record is left out of the page")
	}
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
	e.rec.setDecide(func(_ pageDelivery, msg *message.Message) answer {
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
	e.rec.setDecide(func(p pageDelivery, _ *message.Message) answer {
		mu.Lock()
		defer mu.Unlock()
		for _, d := range p.records {
			if effects[d.uuid] == 0 {
				effects[d.uuid] = 1
			}
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
