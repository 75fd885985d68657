package dynamodbstreams

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/app"
)

func TestWatermarkOf(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name   string
		leases []Lease
		want   time.Time
	}{
		{"no lease: nothing known", nil, time.Time{}},
		{"the earliest shard", []Lease{{ShardID: "a", Watermark: at(5)}, {ShardID: "b", Watermark: at(3)}}, at(3)},
		{"a shard never read: nothing known", []Lease{{ShardID: "a", Watermark: at(5)}, {ShardID: "b"}}, time.Time{}},
		{"an ended shard with leased children does not count", []Lease{
			{ShardID: "p", Checkpoint: CheckpointShardEnd, Watermark: at(1)},
			{ShardID: "c", ParentShardIDs: []string{"p"}, Watermark: at(7)},
			{ShardID: "d", Watermark: at(9)},
		}, at(7)},
		{"a child never read: nothing known", []Lease{
			{ShardID: "p", Checkpoint: CheckpointShardEnd, Watermark: at(8)},
			{ShardID: "c", ParentShardIDs: []string{"p"}},
		}, time.Time{}},
		{"an ended shard whose children are not leased yet: nothing known", []Lease{
			{ShardID: "p", Checkpoint: CheckpointShardEnd, Watermark: at(8)},
			{ShardID: "d", Watermark: at(9)},
		}, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, watermarkOf(tt.leases))
		})
	}
	p := &page{readStart: at(10), reachedEnd: true, lastCreated: at(4)}
	assert.Equal(t, at(8), p.watermark(2*time.Second), "a read that reached the end: its start minus the margin")
	p = &page{readStart: at(10), lastCreated: at(4).Add(700 * time.Millisecond)}
	assert.Equal(t, at(4), p.watermark(2*time.Second), "a full page: its last record's creation time, rounded down")
}

// heldPages is a decide function that holds each page until the test releases it.
type heldPages struct {
	mu   sync.Mutex
	msgs []*message.Message
}

func (h *heldPages) decide(_ pageDelivery, msg *message.Message) answer {
	h.mu.Lock()
	h.msgs = append(h.msgs, msg)
	h.mu.Unlock()
	return hold
}

// ackAll acks every page held so far and reports how many.
func (h *heldPages) ackAll() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, m := range h.msgs {
		m.Ack()
	}
	n := len(h.msgs)
	h.msgs = nil
	return n
}

// The watermark follows acked pages across a shard split: nothing is known before a
// shard's first page is acked; a read that reached the end moves it to the read's
// start minus the margin; a full page to its last record's creation time; an ended
// parent stops counting once its children are leased, and a child that was not read
// yet holds the watermark at zero.
func TestFakeStream_WatermarkAcrossSplits(t *testing.T) {
	e := newFakeEnv(t, 1)
	held := &heldPages{}
	e.rec.setDecide(held.decide)
	parent := ""
	for i := range 4 {
		parent, _ = e.put(fmt.Sprintf("s%d", i), 0)
	}
	cfg := fastConfig("A")
	cfg.MaxRecords = 3
	sub, _ := e.worker(cfg)
	watermark := func() time.Time {
		w, err := sub.Watermark(t.Context())
		require.NoError(t, err)
		return w
	}
	waitFor(t, 5*time.Second, "the first page", func() bool { return len(e.rec.allPages()) == 1 })
	e.waitSyncs(2)
	assert.True(t, watermark().IsZero(), "no page acked: nothing known")

	// A full page (3 of 4 records): the watermark is its last record's second.
	require.Equal(t, 1, held.ackAll())
	waitFor(t, 5*time.Second, "the second page", func() bool { return len(e.rec.allPages()) == 2 })
	first := e.rec.allPages()[0]
	waitFor(t, 5*time.Second, "the first checkpoint", func() bool { return e.leases.lease(e.arn, parent).Checkpoint == first.last() })
	wm := e.leases.lease(e.arn, parent).Watermark
	require.False(t, wm.IsZero())
	assert.Equal(t, wm, wm.Truncate(time.Second), "a creation time, rounded down to the second")
	assert.Equal(t, wm, watermark())

	// The second page (1 record) reached the end: the read's start minus the margin
	// (and later reads, with nothing new, move it on with the clock).
	margin := sub.cfg.WatermarkMargin
	require.Equal(t, 1, held.ackAll())
	waitFor(t, 5*time.Second, "a watermark from a read at the end", func() bool {
		return watermark().After(wm) && e.leases.lease(e.arn, parent).Checkpoint == e.rec.allPages()[1].last()
	})
	reads := e.streams.Reads(parent)
	got := watermark()
	assert.False(t, got.Before(reads[1].Add(-margin).Add(-time.Millisecond)), "at least the start of the read that found the end, minus the margin")
	assert.False(t, got.After(time.Now().Add(-margin)), "never later than now minus the margin")
	idle := watermark()
	waitFor(t, 5*time.Second, "an idle shard's watermark to follow the clock", func() bool { return watermark().After(idle) })

	// Split: the parent is read to its end, its children are leased, one child's
	// page is held.
	c1, c2 := e.streams.Split(e.table, parent)
	e.put("s0", 1)
	e.put("s1", 1)
	e.put("s2", 1)
	e.put("s3", 1)
	waitFor(t, 5*time.Second, "the parent finished and both children leased", func() bool {
		return e.leases.lease(e.arn, parent).Finished() && e.leases.lease(e.arn, c1).ShardID != "" && e.leases.lease(e.arn, c2).ShardID != ""
	})
	waitFor(t, 5*time.Second, "pages of the children", func() bool { return len(e.rec.allPages()) >= 3 })
	assert.True(t, watermark().IsZero(), "a child never acked: nothing known")
	waitFor(t, 10*time.Second, "every child page acked and both watermarks written", func() bool {
		held.ackAll()
		return !e.leases.lease(e.arn, c1).Watermark.IsZero() && !e.leases.lease(e.arn, c2).Watermark.IsZero()
	})
	before := min(e.leases.lease(e.arn, c1).Watermark.UnixNano(), e.leases.lease(e.arn, c2).Watermark.UnixNano())
	got = watermark()
	after := min(e.leases.lease(e.arn, c1).Watermark.UnixNano(), e.leases.lease(e.arn, c2).Watermark.UnixNano())
	assert.GreaterOrEqual(t, got.UnixNano(), before, "the earlier child's (idle shards move on between the reads)")
	assert.LessOrEqual(t, got.UnixNano(), after)
	assert.True(t, got.After(e.leases.lease(e.arn, parent).Watermark), "the ended parent does not hold it back")
}

// On DynamoDB Local's real stream: the watermark stays before a record whose page is
// not acked, passes it once the page is acked, and is kept in the lease item.
func TestDynamoDBLocal_WatermarkFollowsAckedPages(t *testing.T) {
	ddb, streams := localClients(t)
	dcfg := dynamotest.Migrated(t, ddb)
	held := &heldPages{}
	rec := &recorder{t: t}
	rec.setDecide(held.decide)
	cfg := Config{TableName: dcfg.JournalTable, LeaseTable: dcfg.TablesOf(1).Control, WorkerID: "A", LeaseDuration: 3 * time.Second,
		ShardSyncInterval: time.Second, CheckpointInterval: 100 * time.Millisecond}
	sub, err := NewSubscriber(cfg, streams, ddb, &memQuarantine{}, testLogger(), prometheus.NewRegistry())
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(t.Context(), app.TopicJournal)
	require.NoError(t, err)
	rec.consume("A", ch)
	var pw app.ProjectionWatermark = sub
	watermark := func() time.Time {
		w, err := pw.Watermark(t.Context())
		require.NoError(t, err)
		return w
	}

	arn, err := sub.latestStream(t.Context(), dcfg.JournalTable)
	require.NoError(t, err)
	store, err := NewDynamoDBLeaseStore(ddb, dcfg.TablesOf(1).Control)
	require.NoError(t, err)
	lease := func() Lease {
		leases, err := store.ListLeases(t.Context(), arn)
		require.NoError(t, err)
		if len(leases) != 1 {
			return Lease{}
		}
		return leases[0]
	}

	written := time.Now()
	require.NoError(t, putJournalItem(t.Context(), ddb, dcfg.JournalTable, seedEvent("wm", written, "SESSION_INITIATED", "")))
	waitFor(t, 20*time.Second, "the page", func() bool { return len(rec.allPages()) == 1 })
	counter := lease().Counter
	waitFor(t, 20*time.Second, "two more renewals, which would carry a watermark", func() bool { return lease().Counter >= counter+2 })
	assert.True(t, watermark().Before(written), "the record's page is not acked: the watermark is before it")

	require.Equal(t, 1, held.ackAll())
	waitFor(t, 20*time.Second, "the watermark past the record", func() bool { return watermark().After(written) })
	l := lease()
	assert.False(t, l.Watermark.Before(watermark()), "kept in the lease item")
	assert.WithinDuration(t, time.Now(), l.Watermark, sub.cfg.WatermarkMargin+2*sub.cfg.RenewInterval+time.Second)
}
