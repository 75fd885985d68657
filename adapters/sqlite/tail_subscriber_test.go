package sqlite_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

var day = time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)

// receive waits for the next message, failing the test after a deadline.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case m, ok := <-ch:
		require.True(t, ok, "output channel closed")
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no message within 10s")
		return nil
	}
}

// quiet asserts that nothing arrives for a while.
func quiet(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case m, ok := <-ch:
		if ok {
			t.Fatalf("unexpected message at position %s", m.Metadata.Get(sqlite.MetadataPosition))
		}
	case <-time.After(d):
	}
}

// closed waits until the output channel is closed, draining it.
func closed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("output channel not closed within 10s")
		}
	}
}

func newSubscriber(t *testing.T, db *sqlite.DB, cfg sqlite.TailSubscriberConfig) *sqlite.TailSubscriber {
	t.Helper()
	sub, err := sqlite.NewTailSubscriber(db, cfg, watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, sub.Close()) })
	return sub
}

func TestTailSubscriberDeliversJournalInOrder(t *testing.T) {
	db := openDB(t)
	journal := sqlite.NewJournalStore(db)
	events := storetest.GenerateEvents(1, 20, day)
	_, err := journal.Append(t.Context(), events[:50])
	require.NoError(t, err)

	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{PollInterval: time.Hour, BatchSize: 7})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)

	check := func(i int) {
		t.Helper()
		m := receive(t, msgs)
		want := events[i]
		assert.Equal(t, strconv.Itoa(i+1), m.Metadata.Get(sqlite.MetadataPosition))
		assert.Equal(t, want.PK(), m.Metadata.Get(sqlite.MetadataPK))
		assert.Equal(t, want.SK, m.Metadata.Get(sqlite.MetadataSK))
		assert.Equal(t, want.PK()+"/"+want.SK, m.UUID)
		got, err := domain.DecodeJournalItemJSON(m.Payload)
		require.NoError(t, err)
		assert.Equal(t, want.Item(), got.Item())
		require.True(t, m.Ack())
	}
	for i := range 50 {
		check(i)
	}
	// Live: appended after the subscription caught up. The poll interval is an hour, so
	// only the in-process wake-up can deliver them.
	_, err = journal.Append(t.Context(), events[50:])
	require.NoError(t, err)
	for i := 50; i < len(events); i++ {
		check(i)
	}
	quiet(t, msgs, 50*time.Millisecond)
}

func TestTailSubscriberLiveLag(t *testing.T) {
	db := openDB(t)
	journal := sqlite.NewJournalStore(db)
	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{PollInterval: time.Hour})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	events := storetest.GenerateEvents(2, 10, day)
	var worst time.Duration
	for i := range events {
		start := time.Now()
		_, err := journal.Append(t.Context(), events[i:i+1])
		require.NoError(t, err)
		m := receive(t, msgs)
		lag := time.Since(start)
		worst = max(worst, lag)
		assert.Equal(t, events[i].SK, m.Metadata.Get(sqlite.MetadataSK))
		m.Ack()
	}
	t.Logf("worst append-to-delivery lag over %d appends: %s", len(events), worst)
	assert.Less(t, worst, time.Second)
}

func TestTailSubscriberStartsAfterCheckpoint(t *testing.T) {
	db := openDB(t)
	journal := sqlite.NewJournalStore(db)
	events := storetest.GenerateEvents(3, 5, day)
	_, err := journal.Append(t.Context(), events)
	require.NoError(t, err)

	// The projector commits its position with its writes.
	store := storesOn(t, db).Projection
	require.NoError(t, store.Commit(t.Context(), app.Batch{Checkpoint: &app.Checkpoint{Name: "projector", Position: "3"}}))

	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{CheckpointName: "projector"})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	m := receive(t, msgs)
	assert.Equal(t, "4", m.Metadata.Get(sqlite.MetadataPosition))
	assert.Equal(t, events[3].SK, m.Metadata.Get(sqlite.MetadataSK))
	m.Ack()

	// Acks do not move the checkpoint: a new subscription starts after it again.
	sub2 := newSubscriber(t, db, sqlite.TailSubscriberConfig{CheckpointName: "projector"})
	msgs2, err := sub2.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	assert.Equal(t, "4", receive(t, msgs2).Metadata.Get(sqlite.MetadataPosition))

	// No checkpoint yet: from the beginning, or from the end when asked.
	fresh := newSubscriber(t, db, sqlite.TailSubscriberConfig{CheckpointName: "new-consumer"})
	msgs3, err := fresh.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	assert.Equal(t, "1", receive(t, msgs3).Metadata.Get(sqlite.MetadataPosition))

	live := newSubscriber(t, db, sqlite.TailSubscriberConfig{CheckpointName: "new-consumer", StartFromEnd: true})
	msgs4, err := live.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	quiet(t, msgs4, 50*time.Millisecond)
	more := storetest.GenerateEvents(3, 1, day.Add(time.Hour))
	_, err = journal.Append(t.Context(), more[:1])
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(len(events)+1), receive(t, msgs4).Metadata.Get(sqlite.MetadataPosition))

	// A checkpoint that is not a journal position fails the subscription.
	require.NoError(t, sqlite.NewCheckpointStore(db).SetCheckpoint(t.Context(), "broken", "shard-1:99"))
	broken := newSubscriber(t, db, sqlite.TailSubscriberConfig{CheckpointName: "broken"})
	_, err = broken.Subscribe(t.Context(), "journal")
	require.ErrorIs(t, err, domain.ErrInvalid)
}

func TestTailSubscriberNackRedelivers(t *testing.T) {
	db := openDB(t)
	events := storetest.GenerateEvents(4, 2, day)
	_, err := sqlite.NewJournalStore(db).Append(t.Context(), events)
	require.NoError(t, err)

	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{NackBackoff: 20 * time.Millisecond})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	first := receive(t, msgs)
	// Nothing else while the first is neither acked nor nacked.
	quiet(t, msgs, 50*time.Millisecond)
	start := time.Now()
	first.Nack()
	again := receive(t, msgs)
	assert.GreaterOrEqual(t, time.Since(start), 20*time.Millisecond, "after the backoff")
	assert.Equal(t, first.UUID, again.UUID)
	assert.Equal(t, "1", again.Metadata.Get(sqlite.MetadataPosition))
	assert.Equal(t, first.Payload, again.Payload)
	select {
	case <-first.Context().Done():
	default:
		t.Error("a nacked message's context is canceled")
	}
	again.Ack()
	assert.Equal(t, "2", receive(t, msgs).Metadata.Get(sqlite.MetadataPosition))
}

func TestTailSubscriberCloseAndCancel(t *testing.T) {
	db := openDB(t)
	_, err := sqlite.NewJournalStore(db).Append(t.Context(), storetest.GenerateEvents(5, 2, day))
	require.NoError(t, err)

	sub, err := sqlite.NewTailSubscriber(db, sqlite.TailSubscriberConfig{}, nil)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	canceled, err := sub.Subscribe(ctx, "journal")
	require.NoError(t, err)
	a, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)
	b, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)

	inFlight := receive(t, a)
	cancel()
	closed(t, canceled)

	require.NoError(t, sub.Close())
	closed(t, a)
	closed(t, b)
	select {
	case <-inFlight.Context().Done():
	default:
		t.Error("the context of a message in flight is canceled by Close")
	}
	require.NoError(t, sub.Close(), "Close is idempotent")
	_, err = sub.Subscribe(t.Context(), "journal")
	assert.Error(t, err, "no subscription after Close")
}

func TestTailSubscriberConfig(t *testing.T) {
	cfg := sqlite.TailSubscriberConfig{}
	cfg.SetDefaults()
	require.NoError(t, cfg.Validate())
	assert.Equal(t, 100*time.Millisecond, cfg.PollInterval)

	bad := sqlite.TailSubscriberConfig{PollInterval: -1, BatchSize: -1, NackBackoff: -1, ErrorBackoff: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, field := range []string{"PollInterval", "BatchSize", "NackBackoff", "ErrorBackoff"} {
		assert.ErrorContains(t, err, field)
	}
	_, err = sqlite.NewTailSubscriber(openDB(t), bad, nil)
	assert.Error(t, err)
}

func TestJournalPublisherFeedsTheTail(t *testing.T) {
	db := openDB(t)
	pub := sqlite.NewJournalPublisher(db)
	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{PollInterval: time.Hour})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)

	events := storetest.GenerateEvents(6, 3, day)
	var out []*message.Message
	for _, ev := range events {
		b, err := json.Marshal(ev.Item())
		require.NoError(t, err)
		out = append(out, message.NewMessage(watermill.NewUUID(), b))
	}
	require.NoError(t, pub.Publish("journal", out...))
	require.NoError(t, pub.Publish("journal", out[0]), "publishing an item again is not an error")
	for _, ev := range events {
		m := receive(t, msgs)
		assert.Equal(t, ev.SK, m.Metadata.Get(sqlite.MetadataSK))
		m.Ack()
	}
	quiet(t, msgs, 50*time.Millisecond)

	err = pub.Publish("journal", message.NewMessage(watermill.NewUUID(), []byte(`{"PK":"SESSION#x","SK":"nope","Status":"X"}`)))
	assert.ErrorIs(t, err, domain.ErrInvalid)
	require.NoError(t, pub.Close())
	assert.Error(t, pub.Publish("journal", out[0]))
}

// helperDirEnv makes the test binary a helper process that appends to a database: the
// other process of TestTwoProcessesShareTheFile.
const helperDirEnv = "AGENTWATCH_SQLITE_HELPER_DIR"

func TestHelperProcessAppends(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		t.Skip("helper process only")
	}
	db, err := sqlite.Open(context.Background(), dir, nil)
	require.NoError(t, err)
	defer db.Close()
	journal := sqlite.NewJournalStore(db)
	events := storetest.GenerateEvents(8, 300, day.AddDate(1, 0, 0))
	for i := 0; i < len(events); i += 25 {
		_, err := journal.Append(context.Background(), events[i:min(i+25, len(events))])
		require.NoError(t, err)
	}
}

func TestTwoProcessesShareTheFile(t *testing.T) {
	if os.Getenv(helperDirEnv) != "" {
		t.Skip("in the helper process")
	}
	dir := t.TempDir()
	db, err := sqlite.Open(t.Context(), dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	journal := sqlite.NewJournalStore(db)
	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{PollInterval: 20 * time.Millisecond})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)

	// The other process (the CLI's ingest, say) appends while this one does.
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestHelperProcessAppends$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir)
	out := make(chan error, 1)
	go func() {
		b, err := cmd.CombinedOutput()
		if err != nil {
			t.Logf("helper output:\n%s", b)
		}
		out <- err
	}()
	mine := storetest.GenerateEvents(7, 300, day)
	for i := 0; i < len(mine); i += 25 {
		_, err := journal.Append(t.Context(), mine[i:min(i+25, len(mine))])
		require.NoError(t, err)
	}
	require.NoError(t, <-out, "the helper process appended without errors")

	theirs := len(storetest.GenerateEvents(8, 300, day.AddDate(1, 0, 0)))
	total := len(mine) + theirs
	last, err := journal.MaxSeq(t.Context())
	require.NoError(t, err)
	assert.Equal(t, int64(total), last)

	// The subscriber sees both processes' rows, in position order, by polling for theirs.
	for i := 1; i <= total; i++ {
		m := receive(t, msgs)
		require.Equal(t, strconv.Itoa(i), m.Metadata.Get(sqlite.MetadataPosition))
		m.Ack()
	}
}

// TestTailSubscriberPages: with Pages, each read is one message, an app.JournalPage of up
// to BatchSize records in position order, covering the journal exactly once; a nacked
// page comes again whole; rows appended while a page is out go into the next one.
func TestTailSubscriberPages(t *testing.T) {
	db := openDB(t)
	journal := sqlite.NewJournalStore(db)
	events := storetest.GenerateEvents(7, 3, day) // 3 sessions
	before := time.Now().UnixMilli()
	_, err := journal.Append(t.Context(), events)
	require.NoError(t, err)

	sub := newSubscriber(t, db, sqlite.TailSubscriberConfig{Pages: true, BatchSize: 7, NackBackoff: 10 * time.Millisecond})
	msgs, err := sub.Subscribe(t.Context(), "journal")
	require.NoError(t, err)

	first := receive(t, msgs)
	assert.Equal(t, "1", first.Metadata.Get(app.MetaPage))
	page, err := app.DecodePage(first.Payload)
	require.NoError(t, err)
	require.Len(t, page.Records, 7, "a full page")
	assert.Equal(t, "7", first.Metadata.Get(sqlite.MetadataPosition), "the page's last position")
	first.Nack()
	again := receive(t, msgs)
	assert.Equal(t, first.UUID, again.UUID)
	assert.Equal(t, first.Payload, again.Payload, "a nacked page comes again whole")
	again.Ack()

	seen := map[string]bool{}
	positions := []string{}
	collect := func(p app.JournalPage) {
		for _, r := range p.Records {
			positions = append(positions, r.Position)
			assert.GreaterOrEqual(t, r.AppendedAtMs, before, "records carry their append time")
			ev, err := domain.DecodeJournalItemJSON(r.Item)
			require.NoError(t, err)
			seen[ev.Key()] = true
		}
	}
	collect(page)
	for len(seen) < len(events) {
		m := receive(t, msgs)
		p, err := app.DecodePage(m.Payload)
		require.NoError(t, err)
		require.NotEmpty(t, p.Records)
		require.LessOrEqual(t, len(p.Records), 7)
		collect(p)
		m.Ack()
	}
	for i, pos := range positions {
		assert.Equal(t, strconv.Itoa(i+1), pos, "positions in order, each once")
	}

	// Appended while nothing is out: one page with what arrived.
	more := storetest.GenerateEvents(8, 1, day.Add(time.Hour))
	_, err = journal.Append(t.Context(), more)
	require.NoError(t, err)
	m := receive(t, msgs)
	p, err := app.DecodePage(m.Payload)
	require.NoError(t, err)
	assert.Len(t, p.Records, min(len(more), 7))
	m.Ack()
}
