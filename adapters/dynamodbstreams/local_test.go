package dynamodbstreams

// Tests against Amazon DynamoDB Local's real stream (endpoint in
// AGENTWATCH_TEST_DYNAMODB_ENDPOINT; under CI=true a missing server fails the test, else
// it is skipped with a hint — see adapters/dynamodb/dynamotest). Their names start with
// TestDynamoDBLocal_.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/app"
)

// localClients returns clients of the test server: DynamoDB and DynamoDB Streams share
// its endpoint, region and key.
func localClients(t testing.TB) (*dynamodb.Client, *dynamodbstreams.Client) {
	t.Helper()
	ddb := dynamotest.NewClient(t)
	ep := dynamotest.Endpoint(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(dynamotest.Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(dynamotest.AccessKey, dynamotest.AccessKey, "")))
	require.NoError(t, err)
	return ddb, dynamodbstreams.NewFromConfig(cfg, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(ep) })
}

// createKeyTable creates a PAY_PER_REQUEST table keyed PK+SK (strings), with a
// NEW_IMAGE stream if stream is set, and waits until it is active. A table that exists
// already is fine.
func createKeyTable(ctx context.Context, c *dynamodb.Client, name string, stream bool) error {
	in := &dynamodb.CreateTableInput{TableName: &name, BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: dtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema: []dtypes.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: dtypes.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: dtypes.KeyTypeRange}},
	}
	if stream {
		in.StreamSpecification = &dtypes.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: dtypes.StreamViewTypeNewImage}
	}
	_, err := c.CreateTable(ctx, in)
	var inUse *dtypes.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("create table %s: %w", name, err)
	}
	return dynamodb.NewTableExistsWaiter(c).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &name}, time.Minute,
		func(o *dynamodb.TableExistsWaiterOptions) {
			o.MinDelay, o.MaxDelay = 20*time.Millisecond, 200*time.Millisecond
		})
}

// putJournalItem writes a journal item with a plain PutItem, as agents do (seed 002).
func putJournalItem(ctx context.Context, c *dynamodb.Client, table string, attrs map[string]string) error {
	item := make(map[string]dtypes.AttributeValue, len(attrs))
	for k, v := range attrs {
		item[k] = &dtypes.AttributeValueMemberS{Value: v}
	}
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: &table, Item: item})
	return err
}

// seedEvent is one journal item of seed 002.
func seedEvent(sid string, at time.Time, status, errMsg string) map[string]string {
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	m := map[string]string{"PK": "SESSION#" + sid, "SK": "EVENT#" + ts, "Status": status, "Timestamp": ts}
	if errMsg != "" {
		m["ErrorMessage"] = errMsg
	}
	return m
}

// seedSession is a session of seed 002: the happy path, or one that fails at the
// entrypoint (with ErrorMessage).
func seedSession(sid string, start time.Time, fail bool) []map[string]string {
	statuses := []string{"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED",
		"AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_COMPLETED"}
	var out []map[string]string
	for i, s := range statuses {
		if fail && i == 4 {
			out = append(out, seedEvent(sid, start.Add(time.Duration(i)*time.Second), "AGENT_ENTRYPOINT_FAILED", "ValueError: Invalid request format"))
			break
		}
		out = append(out, seedEvent(sid, start.Add(time.Duration(i)*time.Second), s, ""))
	}
	return out
}

func TestLeaseStoreContract(t *testing.T) {
	t.Run("memory", func(t *testing.T) { testLeaseStore(t, newMemLeaseStore()) })
	t.Run("DynamoDBLocal", func(t *testing.T) {
		ddb, _ := localClients(t)
		table := dynamotest.TablePrefix(t, ddb) + "-control"
		require.NoError(t, createKeyTable(t.Context(), ddb, table, false))
		store, err := NewDynamoDBLeaseStore(ddb, table)
		require.NoError(t, err)
		testLeaseStore(t, store)
	})
}

// testLeaseStore is the contract every LeaseStore meets.
func testLeaseStore(t *testing.T, s LeaseStore) {
	ctx := t.Context()
	arn := "arn:aws:dynamodb:ddblocal:000000000000:table/j/stream/2026-11-23T00:00:00.000"
	other := arn + "-other"

	created, err := s.CreateLease(ctx, arn, Lease{ShardID: "shard-1"})
	require.NoError(t, err)
	assert.True(t, created)
	created, err = s.CreateLease(ctx, arn, Lease{ShardID: "shard-1", Owner: "x"})
	require.NoError(t, err)
	assert.False(t, created, "never overwrites")
	_, err = s.CreateLease(ctx, arn, Lease{ShardID: "shard-2", ParentShardIDs: []string{"shard-1"}})
	require.NoError(t, err)
	_, err = s.CreateLease(ctx, other, Lease{ShardID: "shard-9"})
	require.NoError(t, err)

	leases, err := s.ListLeases(ctx, arn)
	require.NoError(t, err)
	require.Len(t, leases, 2, "only the stream's leases")
	slices.SortFunc(leases, func(a, b Lease) int { return compareSequenceNumbers(a.ShardID, b.ShardID) })
	assert.Equal(t, Lease{ShardID: "shard-1"}, leases[0])
	assert.Equal(t, []string{"shard-1"}, leases[1].ParentShardIDs)

	conflict := func(u LeaseUpdate, shard string) {
		t.Helper()
		_, err := s.UpdateLease(ctx, arn, shard, u)
		assert.ErrorIs(t, err, ErrLeaseConflict, "%+v", u)
	}
	// Take a free lease.
	l, err := s.UpdateLease(ctx, arn, "shard-1", LeaseUpdate{ExpectOwner: "", ExpectCounter: 0, NewOwner: "A"})
	require.NoError(t, err)
	assert.Equal(t, "A", l.Owner)
	assert.Equal(t, int64(1), l.Counter)
	conflict(LeaseUpdate{ExpectOwner: "", ExpectCounter: 0, NewOwner: "B"}, "shard-1")  // taken meanwhile
	conflict(LeaseUpdate{ExpectOwner: "A", ExpectCounter: 0, NewOwner: "A"}, "shard-1") // stale counter
	conflict(LeaseUpdate{ExpectOwner: "B", ExpectCounter: 1, NewOwner: "B"}, "shard-1") // wrong owner
	conflict(LeaseUpdate{ExpectOwner: "", ExpectCounter: 0, NewOwner: "A"}, "missing")  // no lease

	// A handoff request sets PendingOwner once and leaves the counter alone.
	l, err = s.UpdateLease(ctx, arn, "shard-1", LeaseUpdate{ExpectOwner: "A", HandoffTo: "B"})
	require.NoError(t, err)
	assert.Equal(t, "B", l.PendingOwner)
	assert.Equal(t, int64(1), l.Counter)
	conflict(LeaseUpdate{ExpectOwner: "A", HandoffTo: "C"}, "shard-1")
	conflict(LeaseUpdate{ExpectOwner: "X", HandoffTo: "C"}, "shard-2")

	// Renewal with a checkpoint keeps the request; a change of owner clears it.
	seq := "4000000000000000000000000000000000000001"
	l, err = s.UpdateLease(ctx, arn, "shard-1", LeaseUpdate{ExpectOwner: "A", ExpectCounter: 1, NewOwner: "A", Checkpoint: seq})
	require.NoError(t, err)
	assert.Equal(t, Lease{ShardID: "shard-1", Owner: "A", Counter: 2, Checkpoint: seq, PendingOwner: "B"}, l)
	l, err = s.UpdateLease(ctx, arn, "shard-1", LeaseUpdate{ExpectOwner: "A", ExpectCounter: 2, NewOwner: "B"})
	require.NoError(t, err)
	assert.Equal(t, Lease{ShardID: "shard-1", Owner: "B", Counter: 3, Checkpoint: seq}, l, "checkpoint kept")

	// Finish: no owner, SHARD_END, EndedAt.
	l, err = s.UpdateLease(ctx, arn, "shard-1", LeaseUpdate{ExpectOwner: "B", ExpectCounter: 3, Checkpoint: CheckpointShardEnd, Ended: true})
	require.NoError(t, err)
	assert.Empty(t, l.Owner)
	assert.True(t, l.Finished())
	assert.WithinDuration(t, time.Now(), l.EndedAt, time.Minute)
	leases, err = s.ListLeases(ctx, arn)
	require.NoError(t, err)
	slices.SortFunc(leases, func(a, b Lease) int { return compareSequenceNumbers(a.ShardID, b.ShardID) })
	assert.Equal(t, l, leases[0], "as listed")
	got, err := s.GetLease(ctx, arn, "shard-1")
	require.NoError(t, err)
	assert.Equal(t, l, got, "as read alone")
	_, err = s.GetLease(ctx, arn, "missing")
	assert.ErrorIs(t, err, ErrLeaseNotFound)

	// Delete only at the expected counter.
	assert.ErrorIs(t, s.DeleteLease(ctx, arn, "shard-1", 3), ErrLeaseConflict)
	require.NoError(t, s.DeleteLease(ctx, arn, "shard-1", 4))
	leases, err = s.ListLeases(ctx, arn)
	require.NoError(t, err)
	assert.Len(t, leases, 1)
}

// recordingSubscriber passes a subscriber's pages on and records their records.
type recordingSubscriber struct {
	message.Subscriber
	t    *testing.T
	mu   sync.Mutex
	seen []delivery
	wg   sync.WaitGroup
}

func (r *recordingSubscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	in, err := r.Subscriber.Subscribe(ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(out)
		for msg := range in {
			p, err := decodePage("", msg)
			assert.NoError(r.t, err)
			r.mu.Lock()
			r.seen = append(r.seen, p.records...)
			r.mu.Unlock()
			out <- msg
		}
	}()
	return out, nil
}

// all returns the records of the pages passed on so far.
func (r *recordingSubscriber) all() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.seen)
}

// localWorker is the AWS-mode worker's journal path: the subscriber under the real
// Watermill router and projector (one commit per page), with the read models and
// quarantine of adapters/dynamodb.
type localWorker struct {
	sub    *Subscriber
	rec    *recordingSubscriber
	router *message.Router
}

func startLocalWorker(t *testing.T, ddb *dynamodb.Client, streams *dynamodbstreams.Client, dcfg awdynamodb.Config, cfg Config) *localWorker {
	t.Helper()
	q, err := awdynamodb.NewQuarantineStore(ddb, dcfg)
	require.NoError(t, err)
	reg := dynamotest.Registry(t)
	rm, err := awdynamodb.NewReadModelStore(ddb, dcfg, reg, 0, nil)
	require.NoError(t, err)
	cfg.TableName, cfg.LeaseTable = dcfg.JournalTable, dcfg.TablesOf(1).Control
	sub, err := NewSubscriber(cfg, streams, ddb, q, testLogger(), nil)
	require.NoError(t, err)
	rec := &recordingSubscriber{Subscriber: sub, t: t}
	metrics, err := app.NewMetrics(nil)
	require.NoError(t, err)
	r, err := app.NewRouter(app.RouterConfig{}, app.JournalFeed{Subscriber: rec}, app.StatusChangeFeed{},
		app.NewQuarantinePublisher(q, metrics), app.NewProjector(rm, reg, discardLogger(), metrics), nil, nil, discardLogger())
	require.NoError(t, err)
	go func() { _ = r.Run(context.Background()) }()
	<-r.Running()
	w := &localWorker{sub: sub, rec: rec, router: r}
	t.Cleanup(w.stop)
	return w
}

// stop closes the router, which closes the subscriber: drain, checkpoint, release.
func (w *localWorker) stop() {
	_ = w.router.Close()
	_ = w.sub.Close()
	w.rec.wg.Wait()
}

// Journal items written with a plain PutItem, as agents write them, are projected; a
// restarted worker delivers nothing at or before the checkpoint and loses nothing.
func TestDynamoDBLocal_JournalFeedRestart(t *testing.T) {
	ddb, streams := localClients(t)
	ctx := t.Context()
	dcfg := dynamotest.Migrated(t, ddb)
	rm, err := awdynamodb.NewReadModelStore(ddb, dcfg, dynamotest.Registry(t), 0, nil)
	require.NoError(t, err)
	q, err := awdynamodb.NewQuarantineStore(ddb, dcfg)
	require.NoError(t, err)
	start := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

	var first []map[string]string
	first = append(first, seedSession("abc-123-def", start, false)...)
	first = append(first, seedSession("fail-1", start.Add(time.Minute), true)...)
	for _, it := range first {
		require.NoError(t, putJournalItem(ctx, ddb, dcfg.JournalTable, it))
	}
	// An agent's malformed item: no Status.
	require.NoError(t, putJournalItem(ctx, ddb, dcfg.JournalTable, map[string]string{"PK": "SESSION#bad", "SK": "EVENT#2024-11-04T10:30:00.000Z"}))

	cfg := Config{WorkerID: "w1", LeaseDuration: 3 * time.Second, ShardSyncInterval: time.Second, CheckpointInterval: 100 * time.Millisecond}
	w1 := startLocalWorker(t, ddb, streams, dcfg, cfg)
	sessionSeen := func(sid string, n int) func() bool {
		return func() bool {
			got, err := rm.LoadSessions(ctx, []string{sid})
			require.NoError(t, err)
			s, ok := got[sid]
			return ok && s.Version > 0 && popcount(s.Session.Seen) == n
		}
	}
	waitFor(t, 30*time.Second, "both sessions projected", func() bool { return sessionSeen("abc-123-def", 6)() && sessionSeen("fail-1", 5)() })
	waitFor(t, 10*time.Second, "the malformed item quarantined", func() bool {
		n, err := q.CountQuarantined(ctx)
		require.NoError(t, err)
		return n == 1
	})
	w1.stop()
	got1 := w1.rec.all()
	assert.Len(t, got1, len(first), "each valid item delivered once")

	arn, err := w1.sub.latestStream(ctx, dcfg.JournalTable)
	require.NoError(t, err)
	store, err := NewDynamoDBLeaseStore(ddb, dcfg.TablesOf(1).Control)
	require.NoError(t, err)
	leases, err := store.ListLeases(ctx, arn)
	require.NoError(t, err)
	require.Len(t, leases, 1, "DynamoDB Local has one shard per stream")
	checkpoint := leases[0].Checkpoint
	assert.Empty(t, leases[0].Owner, "released on close")
	qs, err := q.ListQuarantined(ctx, 10)
	require.NoError(t, err)
	require.Len(t, qs, 1)
	assert.Equal(t, leases[0].ShardID+"/"+checkpoint, qs[0].Key, "checkpoint at the last record: the quarantined one")
	assert.Equal(t, Source, qs[0].Source)
	assert.Contains(t, qs[0].Reason, "Status")
	assert.Contains(t, qs[0].Payload, `"PK":{"S":"SESSION#bad"}`)

	second := seedSession("late-2", start.Add(2*time.Minute), false)
	for _, it := range second {
		require.NoError(t, putJournalItem(ctx, ddb, dcfg.JournalTable, it))
	}
	cfg.WorkerID = "w2"
	w2 := startLocalWorker(t, ddb, streams, dcfg, cfg)
	waitFor(t, 30*time.Second, "the new session projected", sessionSeen("late-2", 6))
	w2.stop()
	got2 := w2.rec.all()
	require.Len(t, got2, len(second), "only the items written after the checkpoint")
	for _, d := range got2 {
		assert.Positive(t, compareSequenceNumbers(d.seq, checkpoint), "nothing at or before the checkpoint")
	}
	all := map[string]bool{}
	for _, d := range append(got1, got2...) {
		all[d.uuid] = true
	}
	for _, it := range append(first, second...) {
		assert.True(t, all[it["PK"]+"/"+it["SK"]], "delivered: %s %s", it["PK"], it["SK"])
	}
	n, err := q.CountQuarantined(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), n, "the malformed item is not quarantined again")
}

func popcount(x uint16) int {
	n := 0
	for ; x != 0; x &= x - 1 {
		n++
	}
	return n
}

// Three workers share one stream; the one reading its shard crashes; another takes the
// shard over within LeaseDuration + 2 × ShardSyncInterval, and every event's effect
// lands exactly once. Redeliveries (records the crashed worker had delivered past its
// last checkpoint) are allowed because the effect is idempotent: it is keyed by the
// event (PK+SK), as the projector's writes are guarded by session versions.
func TestDynamoDBLocal_ThreeWorkersOneCrashes(t *testing.T) {
	ddb, streams := localClients(t)
	ctx := t.Context()
	dcfg := dynamotest.Migrated(t, ddb)
	store, err := NewDynamoDBLeaseStore(ddb, dcfg.TablesOf(1).Control)
	require.NoError(t, err)
	q, err := awdynamodb.NewQuarantineStore(ddb, dcfg)
	require.NoError(t, err)

	var mu sync.Mutex
	effects := map[string]int{} // event -> times its effect was applied
	deliveries := map[string]int{}
	seqOf := map[string]string{} // event -> sequence number
	tracker := newReaderTracker(t)
	cfg := Config{TableName: dcfg.JournalTable, LeaseTable: dcfg.TablesOf(1).Control, LeaseDuration: 3 * time.Second,
		RenewInterval: time.Second, ShardSyncInterval: time.Second, CheckpointInterval: 200 * time.Millisecond}
	workers := map[string]*Subscriber{}
	var wg sync.WaitGroup
	for _, name := range []string{"A", "B", "C"} {
		c := cfg
		c.WorkerID = name
		sub, err := NewSubscriber(c, streams, ddb, q, testLogger(), nil)
		require.NoError(t, err)
		sub.readerHook = tracker.hook
		ch, err := sub.Subscribe(ctx, app.TopicJournal)
		require.NoError(t, err)
		workers[name+"/1"] = sub
		t.Cleanup(func() { _ = sub.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for msg := range ch {
				p, err := decodePage(name, msg)
				if !assert.NoError(t, err) {
					msg.Nack()
					continue
				}
				mu.Lock()
				for _, d := range p.records {
					deliveries[d.uuid]++
					seqOf[d.uuid] = d.seq
					if effects[d.uuid] == 0 { // the idempotent effect
						effects[d.uuid]++
					}
				}
				mu.Unlock()
				msg.Ack()
			}
		}()
	}

	written := map[string]bool{}
	write := func(i int) {
		it := seedEvent(fmt.Sprintf("s%d", i%20), time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Millisecond), "AGENT_ENTRYPOINT_STARTED", "")
		require.NoError(t, putJournalItem(ctx, ddb, dcfg.JournalTable, it))
		written[it["PK"]+"/"+it["SK"]] = true
	}
	i := 0
	for ; i < 50; i++ {
		write(i)
	}
	waitFor(t, 30*time.Second, "the first 50 events", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(effects) == 50
	})
	var holder string
	for owner, shards := range tracker.readers() {
		if len(shards) > 0 {
			holder = owner
		}
	}
	require.NotEmpty(t, holder)

	// Crash the holder while writes go on.
	workers[holder].kill()
	killed := time.Now()
	arn, err := workers[holder].latestStream(ctx, dcfg.JournalTable)
	require.NoError(t, err)
	leases, err := store.ListLeases(ctx, arn)
	require.NoError(t, err)
	require.Len(t, leases, 1)
	checkpointAtCrash := leases[0].Checkpoint
	var took time.Duration
	pace := time.NewTicker(20 * time.Millisecond) // a steady write rate
	defer pace.Stop()
	for deadline := killed.Add(30 * time.Second); took == 0 && time.Now().Before(deadline); i++ {
		<-pace.C
		write(i)
		for owner, shards := range tracker.readers() {
			if owner != holder && len(shards) > 0 && took == 0 {
				took = time.Since(killed)
				t.Logf("%s took the shard over %s after %s crashed", owner, took, holder)
			}
		}
	}
	require.NotZero(t, took, "shard taken over")
	assert.LessOrEqual(t, took, cfg.LeaseDuration+2*cfg.ShardSyncInterval+cfg.RenewInterval+time.Second)
	for end := i + 20; i < end; i++ {
		write(i)
	}
	waitFor(t, 30*time.Second, "every event's effect", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(effects) == len(written)
	})
	for name, sub := range workers {
		if name != holder {
			require.NoError(t, sub.Close())
		}
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for key, n := range effects {
		assert.Equal(t, 1, n, key)
		assert.True(t, written[key])
		if deliveries[key] > 1 {
			dups++
			assert.Positive(t, compareSequenceNumbers(seqOf[key], checkpointAtCrash), "only records after the crashed worker's checkpoint come again")
		}
	}
	t.Logf("%d events, %d delivered twice (acked by %s after its last checkpoint %s), takeover after %s",
		len(written), dups, holder, checkpointAtCrash, took)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
