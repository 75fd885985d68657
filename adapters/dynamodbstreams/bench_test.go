package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqlite/sqlitetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// BenchmarkDynamoDBLocal_LiveLag measures live lag on DynamoDB Local's real stream with
// the subscriber's default polling (PollInterval 250ms, MaxPollInterval 500ms): one
// PutItem at a time, as an agent writes, then the time until
//
//   - delivered: the message reaches the consumer (the next PutItem follows at once,
//     so it lands about one PollInterval before the next read);
//   - delivered-after-idle: the same after a random pause of up to 1s before each
//     PutItem, so that the shard's polling has backed off towards MaxPollInterval;
//   - projected: the execution is visible in the index, through the real Watermill
//     router and projector writing adapters/sqlite read models.
//
// Reports p50, p99 and max in milliseconds. Run with -benchtime 200x or more: an
// iteration takes about 250 ms (750 ms after idle).
func BenchmarkDynamoDBLocal_LiveLag(b *testing.B) {
	b.Run("delivered", func(b *testing.B) { benchDelivered(b, 0) })
	b.Run("delivered-after-idle", func(b *testing.B) { benchDelivered(b, time.Second) })
	b.Run("projected", func(b *testing.B) {
		ddb, streams := localClients(b)
		dcfg := dynamotest.Migrated(b, ddb)
		emb := sqlitetest.Open(b, "")
		rm := emb.Models
		q := sqlite.NewQuarantineStore(emb.DB)
		sub, err := NewSubscriber(Config{TableName: dcfg.JournalTable, LeaseTable: dcfg.TablesOf(1).Control}, streams, ddb, q, nil, nil)
		require.NoError(b, err)
		metrics, err := app.NewMetrics(nil)
		require.NoError(b, err)
		r, err := app.NewRouter(app.RouterConfig{}, app.JournalFeed{Subscriber: sub}, app.StatusChangeFeed{},
			app.NewQuarantinePublisher(q, metrics), app.NewProjector(rm, emb.Registry, discardLogger(), metrics), nil, nil, discardLogger())
		require.NoError(b, err)
		go func() { _ = r.Run(context.Background()) }()
		<-r.Running()
		b.Cleanup(func() { _ = r.Close() })

		var lags []time.Duration
		i := 0
		for b.Loop() {
			i++
			arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:lag-agent:exec-%d", i)
			start := time.Now()
			require.NoError(b, putExecutionItem(b.Context(), ddb, dcfg.JournalTable, arn, i, start))
			for {
				_, err := rm.GetDocument(b.Context(), executionindex.Table, arn)
				if err == nil {
					break
				}
				if !errors.Is(err, domain.ErrNotFound) {
					b.Fatal(err)
				}
				time.Sleep(time.Millisecond) // polling the index
			}
			lags = append(lags, time.Since(start))
		}
		reportLags(b, lags)
	})
}

// benchDelivered measures PutItem -> message delivered. Before each PutItem it waits a
// random time up to idle (0: none), so that the shard's polling has backed off.
func benchDelivered(b *testing.B, idle time.Duration) {
	ddb, streams := localClients(b)
	dcfg := dynamotest.Migrated(b, ddb)
	q, err := awdynamodb.NewQuarantineStore(ddb, dcfg)
	require.NoError(b, err)
	sub, err := NewSubscriber(Config{TableName: dcfg.JournalTable, LeaseTable: dcfg.TablesOf(1).Control}, streams, ddb, q, nil, nil)
	require.NoError(b, err)
	b.Cleanup(func() { _ = sub.Close() })
	ch, err := sub.Subscribe(b.Context(), app.TopicJournal)
	require.NoError(b, err)
	arrived := make(chan string, 16)
	go func() {
		for msg := range ch {
			msg.Ack()
			p, err := decodePage("bench", msg)
			if err != nil {
				b.Error(err)
				continue
			}
			for _, d := range p.records {
				_, sk, _ := strings.Cut(d.uuid, "/")
				arrived <- sk
			}
		}
	}()
	var lags []time.Duration
	i := 0
	for b.Loop() {
		i++
		if idle > 0 {
			<-time.After(rand.N(idle)) // the quiet time between two agent writes
		}
		it := seedEvent("lag", time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(i)*time.Millisecond), "AGENT_ENTRYPOINT_STARTED", "")
		start := time.Now()
		require.NoError(b, putJournalItem(b.Context(), ddb, dcfg.JournalTable, it))
		for sk := range arrived {
			if sk == it["SK"] {
				break
			}
		}
		lags = append(lags, time.Since(start))
	}
	reportLags(b, lags)
}

// putExecutionItem writes an EXECUTION_RUNNING journal item with a plain PutItem.
func putExecutionItem(ctx context.Context, c *dynamodb.Client, table, arn string, i int, at time.Time) error {
	ts := at.UTC().Format("2006-01-02T15:04:05.000Z")
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	item := map[string]dtypes.AttributeValue{
		"PK": s(fmt.Sprintf("SESSION#lag-%d", i)), "SK": s("EVENT#" + ts + "#sfn-running"), "Status": s("EXECUTION_RUNNING"),
		"Timestamp": s(ts), "ExecutionArn": s(arn), "StateMachineArn": s("arn:aws:states:us-east-1:123456789012:stateMachine:lag-agent"),
		"ExecutionName": s(fmt.Sprintf("exec-%d", i)), "AgentName": s("lag-agent"), "StartDate": s(ts),
		"RedriveCount": &dtypes.AttributeValueMemberN{Value: "0"},
	}
	_, err := c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(table), Item: item})
	return err
}

// reportLags reports the p50 and p99 of lags in milliseconds.
func reportLags(b *testing.B, lags []time.Duration) {
	if len(lags) == 0 {
		return
	}
	slices.Sort(lags)
	q := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(float64(lags[len(lags)-1].Microseconds())/1000, "max-ms")
}
