package dynamodbstreams

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/faultinject"
)

// GetRecords fails for a while (a fault proxy in front of DynamoDB Local's stream
// answers 500): the shard's seconds-since-read and lag grow instead of reading 0, the
// readiness check fails naming the shard and the error, and both recover once reads
// succeed again, with every record written meanwhile delivered.
func TestDynamoDBLocal_StalledReaderIsNotReady(t *testing.T) {
	ddb, _ := localClients(t)
	proxy, err := faultinject.New(faultinject.Config{Upstream: dynamotest.Endpoint(t)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = proxy.Close() })
	acfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion(dynamotest.Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(dynamotest.AccessKey, dynamotest.AccessKey, "")))
	require.NoError(t, err)
	streams := dynamodbstreams.NewFromConfig(acfg, func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(proxy.URL()) })
	journal := dynamotest.TablePrefix(t, ddb) + "-journal"
	leaseTable := journal + "-leases"
	require.NoError(t, createKeyTable(t.Context(), ddb, journal, true))
	require.NoError(t, createKeyTable(t.Context(), ddb, leaseTable, false))

	cfg := Config{TableName: journal, LeaseTable: leaseTable, WorkerID: "A", LeaseDuration: 3 * time.Second, ShardSyncInterval: time.Second,
		ErrorBackoff: 100 * time.Millisecond, StallTimeout: 2 * time.Second}
	reg := prometheus.NewRegistry()
	sub, err := NewSubscriber(cfg, streams, ddb, &memQuarantine{}, testLogger(), reg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(t.Context(), journal)
	require.NoError(t, err)
	rec := &recorder{t: t}
	rec.consume("A", ch)
	gauge := func(name string) float64 { return counterValue(t, reg, name, nil) }

	n := 0
	put := func() {
		require.NoError(t, putJournalItem(t.Context(), ddb, journal, seedEvent("stall", time.Date(2024, 11, 4, 10, 0, n, 0, time.UTC), "AGENT_ENTRYPOINT_STARTED", "")))
		n++
	}
	put()
	waitFor(t, 20*time.Second, "the first record", func() bool { return len(rec.all()) == 1 })
	waitFor(t, 5*time.Second, "an idle read", func() bool { return gauge("agentwatch_dynamodbstreams_lag_seconds") < 1 })
	require.NoError(t, sub.CheckStalled(t.Context()))
	assert.Less(t, gauge("agentwatch_dynamodbstreams_shard_seconds_since_read"), 1.0)

	require.NoError(t, proxy.SetRules([]faultinject.Rule{{Service: faultinject.ServiceStreams, Operations: []string{"GetRecords"},
		Kind: faultinject.ServerError, Rate: 1}}))
	put()
	waitFor(t, 20*time.Second, "the readiness check to fail with the read error", func() bool {
		err := sub.CheckStalled(t.Context())
		return err != nil && strings.Contains(err.Error(), "InternalServerError")
	})
	assert.ErrorContains(t, sub.CheckStalled(t.Context()), "stream shard shardId-")
	assert.GreaterOrEqual(t, gauge("agentwatch_dynamodbstreams_shard_seconds_since_read"), 2.0)
	assert.GreaterOrEqual(t, gauge("agentwatch_dynamodbstreams_lag_seconds"), 2.0, "the lag grows while reads fail")
	assert.Equal(t, 1.0, gauge("agentwatch_dynamodbstreams_leases_held"), "still holding the lease")

	require.NoError(t, proxy.SetRules(nil))
	waitFor(t, 20*time.Second, "the record written during the outage", func() bool { return len(rec.all()) == 2 })
	waitFor(t, 5*time.Second, "ready again", func() bool { return sub.CheckStalled(t.Context()) == nil })
	waitFor(t, 5*time.Second, "the lag back down", func() bool { return gauge("agentwatch_dynamodbstreams_lag_seconds") < 1 })
	assert.Positive(t, proxy.Stats().Total(faultinject.ServerError))
}

// Every labelled counter is there from the start, at zero, for each known label value:
// rate() and increase() see the first event.
func TestMetricsStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := newSubscriber(fastConfig("A"), Ports{Streams: newFakeStreams(), Tables: newFakeStreams(), Leases: newMemLeaseStore()},
		&memQuarantine{}, nil, reg, decodeJournalRecord)
	require.NoError(t, err)
	families, err := reg.Gather()
	require.NoError(t, err)
	got := map[string][]string{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				got[f.GetName()] = append(got[f.GetName()], lp.GetValue())
			}
			if m.GetCounter() != nil {
				assert.Zero(t, m.GetCounter().GetValue(), f.GetName())
			}
		}
	}
	assert.ElementsMatch(t, []string{"INSERT", "MODIFY", "REMOVE"}, got["agentwatch_dynamodbstreams_records_read_total"])
	assert.ElementsMatch(t, []string{"remove", "no_new_image"}, got["agentwatch_dynamodbstreams_records_skipped_total"])
	assert.ElementsMatch(t, leaseEventNames, got["agentwatch_dynamodbstreams_lease_events_total"])
	assert.ElementsMatch(t, []string{"invalid"}, got["agentwatch_dynamodbstreams_quarantined_total"])
	for _, name := range []string{"pages_delivered_total", "pages_nacked_total", "lease_writes_confirmed_total", "iterator_renewals_total",
		"trimmed_restarts_total"} {
		found := false
		for _, f := range families {
			found = found || f.GetName() == "agentwatch_dynamodbstreams_"+name
		}
		assert.True(t, found, name)
	}
}
