package app_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// refusingStore is the embedded projection store with one fault injected: it refuses,
// as invalid, every commit that writes the session bad (as DynamoDB refuses an item
// over its size limit).
type refusingStore struct {
	app.ProjectionStore
	bad string
}

func (s refusingStore) Commit(ctx context.Context, b app.Batch) error {
	for _, w := range b.Sessions {
		if w.Session.ID == s.bad {
			return &domain.FieldError{Field: "session " + s.bad, Reason: "is larger than the store takes"}
		}
	}
	return s.ProjectionStore.Commit(ctx, b)
}

// TestPagePoisonCostsOnlyItself: a page holding malformed records and the events of a
// session the store refuses commits everything else at once; each malformed record and
// each of the refused session's events is quarantined on its own with its reason, and
// the checkpoint moves past the page.
func TestPagePoisonCostsOnlyItself(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := newEmbedded(t, t.TempDir(), time.Now())
	events := storetest.GenerateEvents(11, 30, time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC))
	bad := events[len(events)/2].SessionID
	var records []app.JournalRecord
	malformed := []string{`{"PK":"SESSION#x","Status":"SESSION_INITIATED"}`, `{"PK":"SESSION#y","SK":"EVENT#2024","Status":"S","Timestamp":"yesterday"}`}
	wantPoisoned := len(malformed)
	for i := range events {
		item, err := json.Marshal(events[i].Item())
		require.NoError(t, err)
		records = append(records, app.JournalRecord{Position: strconv.Itoa(i + 1), AppendedAtMs: time.Now().UnixMilli(), Item: item})
		if events[i].SessionID == bad {
			wantPoisoned++
		}
		if i == 10 || i == 20 {
			records = append(records, app.JournalRecord{Position: "m" + strconv.Itoa(i), Item: json.RawMessage(malformed[i/10-1])})
		}
	}

	quarantine := sqlite.NewQuarantineStore(e.db)
	projector := app.NewProjector(refusingStore{ProjectionStore: e.models, bad: bad}, e.reg, logger, nil)
	gc := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
	router, err := app.NewRouter(app.RouterConfig{MaxRetries: 1, RetryInitialInterval: time.Millisecond},
		app.JournalFeed{Subscriber: gc, CheckpointName: "page-test"}, app.StatusChangeFeed{},
		app.NewQuarantinePublisher(quarantine, nil), projector, nil, nil, logger)
	require.NoError(t, err)
	go func() { _ = router.Run(context.Background()) }()
	t.Cleanup(func() { router.Close() })
	<-router.Running()

	msg, err := app.NewPageMessage("page-1", records, message.Metadata{app.MetaSource: "test", app.MetaPosition: "99"})
	require.NoError(t, err)
	require.NoError(t, gc.Publish(app.TopicJournal, msg))

	deadline := time.Now().Add(20 * time.Second)
	for {
		cp, err := e.cps.GetCheckpoint(t.Context(), "page-test")
		require.NoError(t, err)
		if cp == "99" {
			break
		}
		require.True(t, time.Now().Before(deadline), "the page's checkpoint was not committed")
		time.Sleep(10 * time.Millisecond)
	}

	ids := map[string]bool{}
	for i := range events {
		ids[events[i].SessionID] = true
	}
	var list []string
	for id := range ids {
		list = append(list, id)
	}
	loaded, err := e.models.LoadSessions(t.Context(), list)
	require.NoError(t, err)
	assert.Len(t, loaded, len(ids)-1, "every session but the refused one is projected")
	assert.NotContains(t, loaded, bad)

	qs, err := quarantine.ListQuarantined(t.Context(), 1000)
	require.NoError(t, err)
	require.Len(t, qs, wantPoisoned, "the malformed records and the refused session's events, each once")
	for _, q := range qs {
		assert.NotEmpty(t, q.Key, "the record's position")
		assert.NotEmpty(t, q.Payload)
		if q.Key[0] == 'm' {
			assert.Contains(t, q.Reason, "decode journal item")
		} else {
			assert.Contains(t, q.Reason, "larger than the store takes")
		}
	}
}

// TestDetectorHoldsAlertsWhileProjectionIsBehind: with deadlines long past on the
// clock, a detector judging at the projection watermark raises nothing while the
// journal holds unprojected events — not for the session whose completion waits in the
// backlog, nor yet for the one that is really stuck — and once the projector caught up,
// alerts exactly the one that is stuck.
func TestDetectorHoldsAlertsWhileProjectionIsBehind(t *testing.T) {
	start := time.Now().Truncate(time.Millisecond)
	e := newEmbedded(t, t.TempDir(), start)
	progress := sqlite.NewProjectionProgress(e.db, app.HandlerProject)
	progress.SetClock(e.clock.Now)

	stalledSession(t, e, "really-stuck", start)
	// A session that completed within 10 ms: its first events are projected, the rest
	// wait in the backlog.
	item := func(id string, st domain.Status, at time.Time) string {
		ts := domain.FormatTime(at)
		return `{"PK":"SESSION#` + id + `","SK":"EVENT#` + ts + `","Status":"` + string(st) + `","Timestamp":"` + ts + `"}` + "\n"
	}
	ingest := func(body string) {
		_, err := e.ingester.IngestBody(context.Background(), "test", []byte(body))
		require.NoError(t, err)
	}
	ingest(item("completed", domain.StatusSessionInitiated, start) + item("completed", domain.StatusInvocationStarted, start.Add(time.Millisecond)))
	_, err := e.projector.CatchUp(context.Background(), sqlite.NewJournalTail(e.journal), e.cps, app.HandlerProject, 1000)
	require.NoError(t, err)
	ingest(item("completed", domain.StatusInvocationSucceeded, start.Add(2*time.Millisecond)) +
		item("completed", domain.StatusEntrypointStarted, start.Add(3*time.Millisecond)) +
		item("completed", domain.StatusBackgroundTaskStarted, start.Add(4*time.Millisecond)) +
		item("completed", domain.StatusBackgroundTaskCompleted, start.Add(10*time.Millisecond)))

	sink := &recordingSink{}
	d := e.detector(app.DetectorConfig{}, sink)
	d.UseWatermark(progress)
	for _, after := range []time.Duration{time.Minute, 10 * time.Minute, time.Hour, 5 * time.Hour} {
		e.clock.t = start.Add(after)
		require.NoError(t, d.Tick(context.Background()))
	}
	assert.Empty(t, sink.sent, "no alert while the projector is behind")

	_, err = e.projector.CatchUp(context.Background(), sqlite.NewJournalTail(e.journal), e.cps, app.HandlerProject, 1000)
	require.NoError(t, err)
	require.NoError(t, d.Tick(context.Background()))
	require.Len(t, sink.sent, 1, "caught up: the stuck session alerts, the completed one does not")
	assert.Equal(t, "really-stuck", sink.sent[0].SessionID)
	assert.Equal(t, stuck.KindStuck, sink.sent[0].Kind)
}
