package dynamodb_test

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// requestEventsEnv sets how many events TestRequestsPerEvent measures. The default,
// 2,000, keeps the package's tests within a few minutes on DynamoDB Local (about 45 ms
// of its time per projected event); the figure is for 10,000:
//
//	AGENTWATCH_REQUESTS_EVENTS=10000 go test -run TestRequestsPerEvent -v -timeout 30m ./adapters/dynamodb/
//
// Requests per event do not depend on the count: each projected event costs one load
// and one commit, each appended event one put.
const requestEventsEnv = "AGENTWATCH_REQUESTS_EVENTS"

// TestRequestsPerEvent measures DynamoDB requests per journal event (issue 4; see
// requestEventsEnv for the count): events
// appended in batches of 500 (as `ingest` does), then projected by app.Projector one
// event per call, as the stream feed delivers them (8 workers, each session on one
// worker, like stream shards), and again in batches of 100 events (catch-up). The
// read models must equal the in-memory model's. Run with -v for the figures.
func TestRequestsPerEvent(t *testing.T) {
	n := 2_000
	if v := os.Getenv(requestEventsEnv); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	ctx := t.Context()
	counter := awdynamodb.NewRequestCounter()
	c := dynamotest.NewClient(t, awdynamodb.WithRequestCounter(counter))
	events := storetest.GenerateEvents(42, n/8+100, time.Date(2024, 11, 4, 9, 0, 0, 0, time.UTC))
	require.GreaterOrEqual(t, len(events), n)
	events = events[:n]
	want := projections.NewModel()
	for i := range events {
		want.Apply(&events[i])
	}
	logger := slog.New(slog.DiscardHandler)
	reg := dynamotest.Registry(t)

	type figure struct {
		Phase    string                   `json:"phase"`
		Events   int                      `json:"events"`
		PerEvent float64                  `json:"requestsPerEvent"`
		Writes   float64                  `json:"writeRequestsPerEvent"`
		Items    float64                  `json:"writtenItemsPerEvent"`
		Counts   awdynamodb.RequestCounts `json:"counts"`
		Took     string                   `json:"took"`
		stores   *awdynamodb.ReadModelStore
	}
	var figures []figure
	measure := func(phase string, run func(cfg awdynamodb.Config, store *awdynamodb.ReadModelStore)) {
		cfg := dynamotest.MigratedWithoutStream(t, c)
		store, err := awdynamodb.NewReadModelStore(c, cfg, reg, 1, logger)
		require.NoError(t, err)
		before, start := counter.Snapshot(), time.Now()
		run(cfg, store)
		d := counter.Snapshot().Sub(before)
		figures = append(figures, figure{Phase: phase, Events: n, PerEvent: float64(d.Total) / float64(n),
			Writes: float64(d.Writes) / float64(n), Items: float64(d.WrittenItems) / float64(n), Counts: d, Took: time.Since(start).Round(time.Millisecond).String(), stores: store})
	}

	measure("append (ingest, batches of 500)", func(cfg awdynamodb.Config, _ *awdynamodb.ReadModelStore) {
		journal, err := awdynamodb.NewJournalStore(c, cfg, logger)
		require.NoError(t, err)
		for i := 0; i < len(events); i += 500 {
			res, err := journal.Append(ctx, events[i:min(i+500, len(events))])
			require.NoError(t, err)
			for _, r := range res {
				require.Equal(t, app.Appended, r)
			}
		}
	})
	measure("project, one event per call (stream feed)", func(_ awdynamodb.Config, store *awdynamodb.ReadModelStore) {
		const workers = 8
		shards := make([][]domain.Event, workers)
		for _, ev := range events {
			h := fnv.New32a()
			h.Write([]byte(ev.SessionID))
			shards[h.Sum32()%workers] = append(shards[h.Sum32()%workers], ev)
		}
		p := app.NewProjector(store, reg, logger, nil)
		errs := make([]error, workers)
		done := make(chan int)
		for w := range workers {
			go func() {
				defer func() { done <- w }()
				for i := range shards[w] {
					if err := p.Project(ctx, shards[w][i:i+1], nil); err != nil {
						errs[w] = err
						return
					}
				}
			}()
		}
		for range workers {
			<-done
		}
		for _, err := range errs {
			require.NoError(t, err)
		}
	})
	measure("project, pages of 1000 events (a GetRecords page)", func(_ awdynamodb.Config, store *awdynamodb.ReadModelStore) {
		p := app.NewProjector(store, reg, logger, nil)
		for i := 0; i < len(events); i += 1000 {
			require.NoError(t, p.Project(ctx, events[i:min(i+1000, len(events))], &app.Checkpoint{Name: "bench", Position: fmt.Sprint(i)}))
		}
	})

	wantRows := storetest.StateSnapshot(reg, want.Derive(reg, projections.Env{}))
	for _, f := range figures[1:] {
		assert.Equal(t, wantRows, storetest.Snapshot(t, reg, f.stores), f.Phase)
	}
	for _, f := range figures {
		t.Logf("%-50s %6d events  %.3f requests/event (%.3f writes, %.3f written items/event)  %s  %v", f.Phase, f.Events, f.PerEvent,
			f.Writes, f.Items, f.Took, f.Counts.Calls)
	}
	out, err := json.MarshalIndent(figures, "", "  ")
	require.NoError(t, err)
	t.Logf("figures: %s", out)
	// One conditional PutItem per appended event; at most a load and a commit per
	// projected event (retries after conflicts would add some); a page costs a few
	// transactions for all of its sessions.
	assert.InDelta(t, 1.0, figures[0].PerEvent, 0.001)
	assert.LessOrEqual(t, figures[1].PerEvent, 2.05)
	assert.LessOrEqual(t, figures[2].Writes, 0.05)
	assert.LessOrEqual(t, figures[2].Items, 0.5)
}
