package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// sseEvent is one server-sent event as a client reads it.
type sseEvent struct {
	name, data string
}

// stream is an open GET /v1/live.
type stream struct {
	res    *http.Response
	events chan sseEvent // closed when the stream ends
	cancel context.CancelFunc
}

// openStream opens a live stream and reads its events in the background.
func openStream(t *testing.T, baseURL string) *stream {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/v1/live", nil)
	require.NoError(t, err)
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	st := &stream{res: res, events: make(chan sseEvent, 100), cancel: cancel}
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
	})
	if res.StatusCode != http.StatusOK {
		close(st.events)
		return st
	}
	go func() {
		defer close(st.events)
		sc := bufio.NewScanner(res.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					st.events <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = strings.TrimPrefix(line, "event: ")
			case strings.HasPrefix(line, "data: "):
				ev.data = strings.TrimPrefix(line, "data: ")
			}
		}
	}()
	return st
}

// next waits for the next event named name that satisfies match (nil: any), skipping
// others; it fails the test if the stream ends or 10 seconds pass first.
func (st *stream) next(t *testing.T, name string, match func(data string) bool) sseEvent {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev, ok := <-st.events:
			require.True(t, ok, "the stream ended before a %q event", name)
			if ev.name == name && (match == nil || match(ev.data)) {
				return ev
			}
		case <-deadline:
			require.FailNow(t, "no "+name+" event within 10s")
		}
	}
}

// ended waits until the stream ends; it fails the test after 10 seconds.
func (st *stream) ended(t *testing.T) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-st.events:
			if !ok {
				return
			}
		case <-deadline:
			require.FailNow(t, "the stream did not end within 10s")
		}
	}
}

func openAlerts(n int) func(string) bool {
	return func(data string) bool {
		var a struct{ Open int }
		return json.Unmarshal([]byte(data), &a) == nil && a.Open == n
	}
}

func hasExecution(arn, status string) func(string) bool {
	return func(data string) bool {
		var d struct {
			Items []struct{ ExecutionArn, Status string }
		}
		if json.Unmarshal([]byte(data), &d) != nil {
			return false
		}
		for _, it := range d.Items {
			if it.ExecutionArn == arn && it.Status == status {
				return true
			}
		}
		return false
	}
}

// GET /v1/live pushes new and changed executions and the open-alert count as
// server-sent events.
func TestLiveStream(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{LiveInterval: 50 * time.Millisecond}})
	st := openStream(t, s.http.URL)
	require.Equal(t, http.StatusOK, st.res.StatusCode)
	assert.Equal(t, "text/event-stream; charset=utf-8", st.res.Header.Get("Content-Type"))
	hello := st.next(t, "hello", nil)
	assert.JSONEq(t, `{"intervalMs":50}`, hello.data)
	st.next(t, "alerts", openAlerts(0))

	x := execution{agent: "my-agent", name: "live-1", session: "sess-live-1", start: time.Now().UTC().Truncate(time.Second)}
	s.post(statusChange(x, "RUNNING", time.Time{}, "", ""))
	st.next(t, "executions", hasExecution(executionArn("my-agent", "live-1"), "RUNNING"))
	s.post(statusChange(x, "SUCCEEDED", x.start.Add(3*time.Second), "", ""))
	st.next(t, "executions", hasExecution(executionArn("my-agent", "live-1"), "SUCCEEDED"))

	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "sess-live-1", Kind: stuck.KindStuck, AgentName: "my-agent",
		Diagnosis: domain.Diagnosis{Outcome: domain.OutcomeInProgress}}))
	st.next(t, "alerts", openAlerts(1))
	a := s.do(http.MethodPost, "/v1/alerts/sess-live-1/stuck/ack", "application/json", nil)
	require.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	st.next(t, "alerts", openAlerts(0))

	t.Run("a second stream shares the poller and gets the count at once", func(t *testing.T) {
		other := openStream(t, s.http.URL)
		other.next(t, "hello", nil)
		other.next(t, "alerts", openAlerts(0))
		assert.Equal(t, 2, httpapi.LiveClients(s.server))
	})
}

// The live hub reads the store, not an in-process hook: a server sees what another
// process (here another connection to the same database, with its own server) wrote.
func TestLiveStreamSeesOtherProcesses(t *testing.T) {
	writer := newStack(t, stackOptions{})
	db, err := sqlite.Open(t.Context(), writer.dir, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, db.Close()) })
	reg := storetest.Registry(t)
	readModel := sqlite.NewReadModelStore(db, reg, 0)
	queries := app.NewQueries(reg, readModel, sqlite.NewJournalStore(db), sqlite.NewAlertStore(db), sqlite.NewQuarantineStore(db))
	reader, err := httpapi.New(httpapi.Config{LiveInterval: 50 * time.Millisecond}, queries, nil, nil, nil, nil)
	require.NoError(t, err)
	hs := httptest.NewServer(reader.Handler())
	t.Cleanup(func() {
		require.NoError(t, reader.Stop(context.Background()))
		hs.Close()
	})

	st := openStream(t, hs.URL)
	st.next(t, "hello", nil)
	st.next(t, "alerts", openAlerts(0))
	x := execution{agent: "my-agent", name: "elsewhere", session: "sess-elsewhere", start: time.Now().UTC().Truncate(time.Second)}
	writer.post(statusChange(x, "RUNNING", time.Time{}, "", ""))
	st.next(t, "executions", hasExecution(executionArn("my-agent", "elsewhere"), "RUNNING"))
	require.NoError(t, writer.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "sess-elsewhere", Kind: stuck.KindStuck, AgentName: "my-agent"}))
	st.next(t, "alerts", openAlerts(1))
}

// Streams are bounded: one over Config.MaxLiveClients is answered 503 with Retry-After
// (the page polls instead); a client that goes away frees its place, and the poller
// stops when the last one leaves.
func TestLiveStreamLimitAndDisconnects(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{LiveInterval: 50 * time.Millisecond, MaxLiveClients: 2}})
	first, second := openStream(t, s.http.URL), openStream(t, s.http.URL)
	first.next(t, "hello", nil)
	second.next(t, "hello", nil)

	third := openStream(t, s.http.URL)
	require.Equal(t, http.StatusServiceUnavailable, third.res.StatusCode)
	assert.Equal(t, "30", third.res.Header.Get("Retry-After"))
	var body struct{ Error string }
	require.NoError(t, json.NewDecoder(third.res.Body).Decode(&body))
	assert.Contains(t, body.Error, "the limit is 2")

	first.cancel()
	waitUntil(t, "the first client's place is free", func() bool { return httpapi.LiveClients(s.server) == 1 })
	fourth := openStream(t, s.http.URL)
	require.Equal(t, http.StatusOK, fourth.res.StatusCode)
	fourth.next(t, "hello", nil)

	second.cancel()
	fourth.cancel()
	waitUntil(t, "no client left", func() bool { return httpapi.LiveClients(s.server) == 0 })
}

// A graceful shutdown ends the open streams instead of waiting for them until its
// deadline.
func TestLiveStreamShutdown(t *testing.T) {
	s := newStack(t, stackOptions{})
	srv, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", LiveInterval: 50 * time.Millisecond}, s.queries, nil, nil, nil, nil)
	require.NoError(t, err)
	require.NoError(t, srv.Start(t.Context()))
	streams := []*stream{openStream(t, srv.URL()), openStream(t, srv.URL())}
	for _, st := range streams {
		st.next(t, "hello", nil)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	require.NoError(t, srv.Stop(ctx), "the streams end; nothing is left to force-close")
	for _, st := range streams {
		st.ended(t)
	}
	assert.Zero(t, httpapi.LiveClients(srv))
}

// waitUntil polls cond every 10ms until it holds; it fails the test after 10 seconds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "timed out waiting: "+what)
		}
		<-time.After(10 * time.Millisecond)
	}
}
