package dynamodbstreams

// Lease writes whose responses are lost: the write was applied, the SDK retries it, and
// the retry fails its condition. The lease is still ours; a worker must not take that
// for a lost lease. The faults come from adapters/faultinject's proxy in front of
// DynamoDB Local, at the protocol level.

import (
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/faultinject"
)

// faultyLeaseStore is a DynamoDBLeaseStore in a fresh table of DynamoDB Local, reached
// through a fault proxy; the SDK retries each call up to 3 times, as by default.
func faultyLeaseStore(t *testing.T) (*DynamoDBLeaseStore, *faultinject.Proxy, string) {
	t.Helper()
	ddb, _ := localClients(t)
	table := dynamotest.TablePrefix(t, ddb) + "-leases"
	require.NoError(t, createKeyTable(t.Context(), ddb, table, false))
	proxy, err := faultinject.New(faultinject.Config{Upstream: dynamotest.Endpoint(t), Seed: 7})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	faulty := dynamotest.NewClient(t, func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(proxy.URL())
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) { so.MaxAttempts = 3 })
	})
	store, err := NewDynamoDBLeaseStore(faulty, table)
	require.NoError(t, err)
	return store, proxy, table
}

// dropLeaseResponses is a rule that drops the responses of lease writes (UpdateItem).
func dropLeaseResponses(rate float64, limit int) []faultinject.Rule {
	return []faultinject.Rule{{Service: faultinject.ServiceDynamoDB, Operations: []string{"UpdateItem"},
		Kind: faultinject.DropResponse, Rate: rate, Limit: limit}}
}

func leaseEvents(t *testing.T, reg *prometheus.Registry, event string) float64 {
	return counterValue(t, reg, "agentwatch_dynamodbstreams_lease_events_total", map[string]string{"event": event})
}

// One worker on DynamoDB Local's real stream: a renewal, a checkpoint and the final
// release each lose their response once (retry fails its condition), and once every
// attempt (the SDK gives up; the next write fails its condition). The worker keeps its
// lease throughout and its checkpoints land.
func TestDynamoDBLocal_LeaseWritesSurviveDroppedResponses(t *testing.T) {
	ddb, streams := localClients(t)
	store, proxy, _ := faultyLeaseStore(t)
	journal := dynamotest.TablePrefix(t, ddb) + "-journal"
	require.NoError(t, createKeyTable(t.Context(), ddb, journal, true))
	cfg := Config{TableName: journal, WorkerID: "A", LeaseDuration: 6 * time.Second, RenewInterval: time.Second,
		ShardSyncInterval: time.Second, CheckpointInterval: 50 * time.Millisecond, ErrorBackoff: 100 * time.Millisecond}
	reg := prometheus.NewRegistry()
	sub, err := newSubscriber(cfg, Ports{Streams: streams, Tables: ddb, Leases: store}, &memQuarantine{}, testLogger(), reg, decodeJournalRecord)
	require.NoError(t, err)
	readers := newReaderTracker(t)
	sub.readerHook = readers.hook
	ch, err := sub.Subscribe(t.Context(), journal)
	require.NoError(t, err)
	rec := &recorder{}
	rec.consume("A", ch)
	arn, err := sub.latestStream(t.Context(), journal)
	require.NoError(t, err)

	n := 0
	put := func() {
		t.Helper()
		require.NoError(t, putJournalItem(t.Context(), ddb, journal, seedEvent("s", time.Date(2024, 11, 4, 10, 0, n, 0, time.UTC), "AGENT_ENTRYPOINT_STARTED", "")))
		n++
	}
	checkpointAtLast := func() bool {
		leases, err := store.ListLeases(t.Context(), arn)
		require.NoError(t, err)
		ds := rec.all()
		return len(leases) == 1 && len(ds) == n && leases[0].Checkpoint == ds[len(ds)-1].seq && leases[0].Owner == "A/1"
	}
	put()
	waitFor(t, 20*time.Second, "the first record checkpointed", checkpointAtLast)

	writes := func() int64 { return proxy.Stats().Requests["UpdateItem"] }
	for _, tc := range []struct {
		name  string
		limit int
	}{{"the response of one attempt lost", 1}, {"the responses of every attempt lost", 3}} {
		// A renewal (no new record: the next lease write is a renewal).
		require.NoError(t, proxy.SetRules(dropLeaseResponses(1, tc.limit)))
		before := proxy.Stats().Total()
		waitFor(t, 20*time.Second, tc.name+": renewal", func() bool { return proxy.Stats().Total()-before == int64(tc.limit) })
		w := writes()
		waitFor(t, 20*time.Second, tc.name+": two more lease writes", func() bool { return writes() >= w+2 })
		assert.Zero(t, leaseEvents(t, reg, leaseLost), "%s: renewal: no lease lost", tc.name)
		assert.Equal(t, []string{"A/1"}, readersOf(readers, "A/1"), "%s: still reading", tc.name)

		// A checkpoint: a new record, acked; the next lease write carries its checkpoint.
		require.NoError(t, proxy.SetRules(dropLeaseResponses(1, tc.limit)))
		put()
		waitFor(t, 20*time.Second, tc.name+": checkpoint", checkpointAtLast)
		assert.Zero(t, leaseEvents(t, reg, leaseLost), "%s: checkpoint: no lease lost", tc.name)
	}

	// The final release loses its response.
	require.NoError(t, proxy.SetRules(dropLeaseResponses(1, 1)))
	put()
	waitFor(t, 20*time.Second, "the last record delivered", func() bool { return len(rec.all()) == n })
	require.NoError(t, sub.Close())
	leases, err := store.ListLeases(t.Context(), arn)
	require.NoError(t, err)
	require.Len(t, leases, 1)
	assert.Empty(t, leases[0].Owner, "released")
	ds := rec.all()
	assert.Equal(t, ds[len(ds)-1].seq, leases[0].Checkpoint, "with the final checkpoint")
	assert.Zero(t, leaseEvents(t, reg, leaseLost))
	assert.Equal(t, 1.0, leaseEvents(t, reg, leaseReleased), "reported as released")
	assert.Equal(t, 1.0, leaseEvents(t, reg, leaseTaken), "taken once, never again")
	assert.Len(t, rec.distinct(), n)
	assert.Len(t, ds, n, "nothing delivered twice")
}

func readersOf(rt *readerTracker, owner string) []string {
	var out []string
	for o, shards := range rt.readers() {
		if o == owner && len(shards) > 0 {
			out = append(out, o)
		}
	}
	return out
}

// Two workers share four shards of a fake stream whose leases live on DynamoDB Local
// behind a proxy that drops 30% of the lease writes' responses: takes, renewals,
// checkpoints, handoff requests, handoffs and releases. Nobody loses a lease, nobody
// takes one as expired, and every record is delivered.
func TestFakeStream_LeasesOnDynamoDBLocalSurviveDroppedResponses(t *testing.T) {
	store, proxy, _ := faultyLeaseStore(t)
	e := newFakeEnv(t, 4)
	require.NoError(t, proxy.SetRules(dropLeaseResponses(0.3, 0)))
	cfg := func(name string) Config {
		c := fastConfig(name)
		c.LeaseDuration, c.RenewInterval, c.ShardSyncInterval = 6*time.Second, 500*time.Millisecond, 500*time.Millisecond
		return c
	}
	start := func(name string) *prometheus.Registry {
		reg := prometheus.NewRegistry()
		sub, err := newSubscriber(cfg(name), Ports{Streams: e.streams, Tables: e.streams, Leases: store}, e.quarantine, testLogger(), reg, decodeJournalRecord)
		require.NoError(t, err)
		sub.readerHook = e.readers.hook
		ch, err := sub.Subscribe(t.Context(), "journal")
		require.NoError(t, err)
		e.rec.consume(name, ch)
		t.Cleanup(func() { _ = sub.Close() })
		return reg
	}
	for s := range 40 {
		e.put(fmt.Sprintf("s%d", s), 0)
	}
	regA := start("A")
	waitFor(t, 30*time.Second, "A reading 4 shards", func() bool { return len(e.readers.readers()["A/1"]) == 4 })
	regB := start("B")
	for i := 1; i < 10; i++ {
		for s := range 40 {
			e.put(fmt.Sprintf("s%d", s), i)
		}
		time.Sleep(300 * time.Millisecond) // a steady write rate while leases move
	}
	waitFor(t, 30*time.Second, "A and B reading 2 shards each", func() bool {
		r := e.readers.readers()
		return len(r["A/1"]) == 2 && len(r["B/1"]) == 2
	})
	waitFor(t, 30*time.Second, "400 records", func() bool { return len(e.rec.distinct()) == 400 })
	t.Logf("dropped %d of %d lease-write responses", proxy.Stats().Total(), proxy.Stats().Requests["UpdateItem"])
	require.Positive(t, proxy.Stats().Total())
	for name, reg := range map[string]*prometheus.Registry{"A": regA, "B": regB} {
		assert.Zero(t, leaseEvents(t, reg, leaseLost), "%s lost no lease", name)
		assert.Zero(t, leaseEvents(t, reg, leaseTakenExpired), "%s took no lease as expired", name)
	}
	for name, reg := range map[string]*prometheus.Registry{"A": regA, "B": regB} {
		events := map[string]float64{}
		for _, ev := range leaseEventNames {
			events[ev] = leaseEvents(t, reg, ev)
		}
		t.Logf("%s: lease events %v, writes confirmed on a re-read %v", name, events,
			counterValue(t, reg, "agentwatch_dynamodbstreams_lease_writes_confirmed_total", nil))
	}
	assert.Positive(t, leaseEvents(t, regA, leaseHandedOff), "A handed leases over")
}
