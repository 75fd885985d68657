package dynamodbstreams

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
)

// memLeaseStore is a LeaseStore in memory with the semantics of DynamoDBLeaseStore
// (TestLeaseStoreContract runs the same cases on both).
type memLeaseStore struct {
	mu     sync.Mutex
	leases map[string]map[string]Lease
}

var _ LeaseStore = (*memLeaseStore)(nil)

func newMemLeaseStore() *memLeaseStore { return &memLeaseStore{leases: map[string]map[string]Lease{}} }

func cloneLease(l Lease) Lease {
	l.ParentShardIDs = slices.Clone(l.ParentShardIDs)
	return l
}

func (m *memLeaseStore) ListLeases(_ context.Context, streamArn string) ([]Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Lease
	for _, id := range slices.Sorted(maps.Keys(m.leases[streamArn])) {
		out = append(out, cloneLease(m.leases[streamArn][id]))
	}
	return out, nil
}

func (m *memLeaseStore) GetLease(_ context.Context, streamArn, shardID string) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[streamArn][shardID]
	if !ok {
		return Lease{}, fmt.Errorf("get lease %s: %w", shardID, ErrLeaseNotFound)
	}
	return cloneLease(l), nil
}

func (m *memLeaseStore) CreateLease(_ context.Context, streamArn string, l Lease) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[streamArn] == nil {
		m.leases[streamArn] = map[string]Lease{}
	}
	if _, ok := m.leases[streamArn][l.ShardID]; ok {
		return false, nil
	}
	l = cloneLease(l)
	slices.Sort(l.ParentShardIDs)
	if len(l.ParentShardIDs) == 0 {
		l.ParentShardIDs = nil
	}
	m.leases[streamArn][l.ShardID] = l
	return true, nil
}

func (m *memLeaseStore) UpdateLease(_ context.Context, streamArn, shardID string, u LeaseUpdate) (Lease, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[streamArn][shardID]
	if !ok || l.Owner != u.ExpectOwner {
		return Lease{}, fmt.Errorf("update lease %s: %w", shardID, ErrLeaseConflict)
	}
	if u.HandoffTo != "" {
		if l.PendingOwner != "" {
			return Lease{}, fmt.Errorf("update lease %s: %w", shardID, ErrLeaseConflict)
		}
		l.PendingOwner = u.HandoffTo
		m.leases[streamArn][shardID] = l
		return cloneLease(l), nil
	}
	if l.Counter != u.ExpectCounter {
		return Lease{}, fmt.Errorf("update lease %s: %w", shardID, ErrLeaseConflict)
	}
	l.Counter++
	if u.NewOwner != u.ExpectOwner {
		l.PendingOwner = ""
	}
	l.Owner = u.NewOwner
	if u.Checkpoint != "" {
		l.Checkpoint = u.Checkpoint
	}
	if u.Ended {
		l.EndedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	if !u.Watermark.IsZero() {
		l.Watermark = u.Watermark.UTC().Truncate(time.Millisecond)
	}
	m.leases[streamArn][shardID] = l
	return cloneLease(l), nil
}

func (m *memLeaseStore) DeleteLease(_ context.Context, streamArn, shardID string, counter int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := m.leases[streamArn][shardID]
	if !ok || l.Counter != counter {
		return fmt.Errorf("delete lease %s: %w", shardID, ErrLeaseConflict)
	}
	delete(m.leases[streamArn], shardID)
	return nil
}

// lease returns one lease (the zero Lease if there is none).
func (m *memLeaseStore) lease(streamArn, shardID string) Lease {
	m.mu.Lock()
	defer m.mu.Unlock()
	return cloneLease(m.leases[streamArn][shardID])
}

// memQuarantine is an app.Quarantine in memory.
type memQuarantine struct {
	mu    sync.Mutex
	items []app.Quarantined
	// fail, when set, makes Quarantine fail.
	fail error
}

func (q *memQuarantine) Quarantine(_ context.Context, item app.Quarantined) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.fail != nil {
		return q.fail
	}
	item.ID = int64(len(q.items) + 1)
	q.items = append(q.items, item)
	return nil
}

func (q *memQuarantine) ListQuarantined(_ context.Context, limit int) ([]app.Quarantined, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := slices.Clone(q.items)
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (q *memQuarantine) CountQuarantined(context.Context) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return int64(len(q.items)), nil
}

func (q *memQuarantine) all() []app.Quarantined {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.items)
}

// delivery is one record of a page a test consumer received.
type delivery struct {
	worker string
	shard  string
	seq    string
	// uuid is the journal item's "<PK>/<SK>".
	uuid    string
	payload string
	// page is the uuid of the page message the record came in, metadata its metadata.
	page     string
	metadata message.Metadata
	at       time.Time
}

// pageDelivery is one page message a test consumer received.
type pageDelivery struct {
	worker   string
	shard    string
	uuid     string
	records  []delivery
	metadata message.Metadata
}

// first and last are the sequence numbers of the page's first and last record.
func (p pageDelivery) first() string { return p.records[0].seq }
func (p pageDelivery) last() string  { return p.records[len(p.records)-1].seq }

// answer is what a recorder does with a message.
type answer int

const (
	ack  answer = iota
	nack        // Nack
	hold        // neither: the test answers later
)

// recorder collects the pages that any number of workers deliver and answers each
// page as its decide function says (ack by default).
type recorder struct {
	mu         sync.Mutex
	deliveries []delivery
	pages      []pageDelivery
	// decide answers a page; nil acks everything. It runs on the consuming goroutine,
	// so it may block (holding the page in flight).
	decide func(p pageDelivery, msg *message.Message) answer
	wg     sync.WaitGroup
	// t, when set, fails the test on a message that is not a journal page.
	t *testing.T
}

// setDecide replaces the decide function.
func (r *recorder) setDecide(f func(p pageDelivery, msg *message.Message) answer) {
	r.mu.Lock()
	r.decide = f
	r.mu.Unlock()
}

// decodePage reads a page message of journal items.
func decodePage(worker string, msg *message.Message) (pageDelivery, error) {
	if msg.Metadata.Get(app.MetaPage) != "1" {
		return pageDelivery{}, fmt.Errorf("message %s is not a page", msg.UUID)
	}
	jp, err := app.DecodePage(msg.Payload)
	if err != nil {
		return pageDelivery{}, err
	}
	p := pageDelivery{worker: worker, shard: msg.Metadata.Get(MetadataShardID), uuid: msg.UUID, metadata: msg.Metadata}
	now := time.Now()
	for _, rec := range jp.Records {
		var keys struct{ PK, SK string }
		if err := json.Unmarshal(rec.Item, &keys); err != nil {
			return pageDelivery{}, fmt.Errorf("record %s: %w", rec.Position, err)
		}
		shard, seq, _ := strings.Cut(rec.Position, "/")
		if shard != p.shard {
			return pageDelivery{}, fmt.Errorf("record %s in a page of shard %s", rec.Position, p.shard)
		}
		p.records = append(p.records, delivery{worker: worker, shard: shard, seq: seq, uuid: keys.PK + "/" + keys.SK,
			payload: string(rec.Item), page: msg.UUID, metadata: msg.Metadata, at: now})
	}
	if len(p.records) == 0 {
		return pageDelivery{}, fmt.Errorf("page %s without records", msg.UUID)
	}
	return p, nil
}

// consume reads ch until it is closed.
func (r *recorder) consume(worker string, ch <-chan *message.Message) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for msg := range ch {
			p, err := decodePage(worker, msg)
			if err != nil {
				if r.t != nil {
					r.t.Errorf("undecodable page: %v", err)
				}
				msg.Nack()
				continue
			}
			r.mu.Lock()
			r.deliveries = append(r.deliveries, p.records...)
			r.pages = append(r.pages, p)
			decide := r.decide
			r.mu.Unlock()
			a := ack
			if decide != nil {
				a = decide(p, msg)
			}
			switch a {
			case ack:
				msg.Ack()
			case nack:
				msg.Nack()
			}
		}
	}()
}

// allPages returns the pages delivered so far.
func (r *recorder) allPages() []pageDelivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.pages)
}

func (r *recorder) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.deliveries)
}

// distinct counts the distinct (shard, sequence number) pairs delivered.
func (r *recorder) distinct() map[string]int {
	out := map[string]int{}
	for _, d := range r.all() {
		out[d.shard+"/"+d.seq]++
	}
	return out
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// readerTracker checks that no two workers read one shard at the same time.
type readerTracker struct {
	t      *testing.T
	mu     sync.Mutex
	active map[string]string // shard -> owner
	starts map[string]int    // owner -> readers started
}

func newReaderTracker(t *testing.T) *readerTracker {
	return &readerTracker{t: t, active: map[string]string{}, starts: map[string]int{}}
}

func (rt *readerTracker) hook(shard, owner string, active bool) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if active {
		if other, ok := rt.active[shard]; ok {
			rt.t.Errorf("shard %s read by %s while %s still reads it", shard, owner, other)
		}
		rt.active[shard] = owner
		rt.starts[owner]++
		return
	}
	if rt.active[shard] == owner {
		delete(rt.active, shard)
	}
}

// started returns how many readers owner started.
func (rt *readerTracker) started(owner string) int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.starts[owner]
}

// readers returns the shards each owner reads now.
func (rt *readerTracker) readers() map[string][]string {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	out := map[string][]string{}
	for shard, owner := range rt.active {
		out[owner] = append(out[owner], shard)
	}
	return out
}

// fakeEnv is a fake stream and a memory lease store shared by the workers of one test.
type fakeEnv struct {
	t          *testing.T
	streams    *fakeStreams
	leases     *memLeaseStore
	quarantine *memQuarantine
	readers    *readerTracker
	table, arn string
	rec        *recorder
	sessions   int
}

func newFakeEnv(t *testing.T, shards int) *fakeEnv {
	f := newFakeStreams()
	table := "journal"
	arn := f.CreateTable(table, shards)
	return &fakeEnv{t: t, streams: f, leases: newMemLeaseStore(), quarantine: &memQuarantine{}, readers: newReaderTracker(t),
		table: table, arn: arn, rec: &recorder{t: t}}
}

// waitSyncs waits until the workers made n more DescribeStream calls (syncs).
func (e *fakeEnv) waitSyncs(n int) {
	e.t.Helper()
	target := e.streams.Describes() + n
	waitFor(e.t, 30*time.Second, fmt.Sprintf("%d more syncs", n), func() bool { return e.streams.Describes() >= target })
}

// fastConfig is a Config with short lease timings for tests.
func fastConfig(worker string) Config {
	return Config{TableName: "journal", WorkerID: worker, LeaseDuration: 900 * time.Millisecond, RenewInterval: 150 * time.Millisecond,
		ShardSyncInterval: 200 * time.Millisecond, PollInterval: MinPollInterval, MaxPollInterval: MinPollInterval,
		NackBackoff: 10 * time.Millisecond, CheckpointInterval: 50 * time.Millisecond, DrainTimeout: 300 * time.Millisecond,
		ErrorBackoff: 50 * time.Millisecond}
}

// worker starts a subscriber over the env's ports, consumed by the env's recorder.
func (e *fakeEnv) worker(cfg Config) (*Subscriber, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	sub, err := newSubscriber(cfg, Ports{Streams: e.streams, Tables: e.streams, Leases: e.leases}, e.quarantine, testLogger(), reg, decodeJournalRecord)
	require.NoError(e.t, err)
	sub.readerHook = e.readers.hook
	ch, err := sub.Subscribe(e.t.Context(), "journal")
	require.NoError(e.t, err)
	e.rec.consume(cfg.WorkerID, ch)
	e.t.Cleanup(func() { _ = sub.Close() })
	return sub, reg
}

// put writes journal item i of session sid and returns its shard and sequence number.
func (e *fakeEnv) put(sid string, i int) (string, string) {
	return e.streams.Put(e.table, stypes.OperationTypeInsert, journalImage(sid, i))
}

// journalImage is a valid journal item (seed 002) as a stream image.
func journalImage(sid string, i int) map[string]stypes.AttributeValue {
	ts := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC).Add(time.Duration(i) * time.Second).Format("2006-01-02T15:04:05.000Z")
	statuses := []string{"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED",
		"AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_COMPLETED"}
	return map[string]stypes.AttributeValue{
		"PK":        &stypes.AttributeValueMemberS{Value: "SESSION#" + sid},
		"SK":        &stypes.AttributeValueMemberS{Value: "EVENT#" + ts},
		"Status":    &stypes.AttributeValueMemberS{Value: statuses[i%len(statuses)]},
		"Timestamp": &stypes.AttributeValueMemberS{Value: ts},
	}
}

// counterValue reads a counter (or gauge) of reg by name and labels.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		total := 0.0
		for _, m := range f.GetMetric() {
			match := true
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					match = false
				}
			}
			if !match {
				continue
			}
			switch {
			case m.GetCounter() != nil:
				total += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				total += m.GetGauge().GetValue()
			}
		}
		return total
	}
	return 0
}

// testLogger logs at debug level when AGENTWATCH_TEST_DEBUG is set.
func testLogger() watermill.LoggerAdapter {
	if os.Getenv("AGENTWATCH_TEST_DEBUG") != "" {
		return watermill.NewStdLogger(true, false)
	}
	return nil
}
