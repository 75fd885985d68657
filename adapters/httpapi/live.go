package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// liveWindow is how many of the newest executions, and of the newest RUNNING ones, each
// poll of the live hub reads: enough to see new executions and the ends of recent
// ones; anything older reaches the page through its own slower polling.
const liveWindow = 25

// alertCountEvery is how many polls pass between two counts of the open alerts (a
// count reads every open alert; the newest alert, read on every poll, is one item).
// An acknowledgement through this server recounts at once (liveHub.poke).
const alertCountEvery = 4

// liveClientBuffer is how many events a client may fall behind before the hub drops it
// (its browser reconnects and reloads what it shows).
const liveClientBuffer = 16

// Errors of liveHub.subscribe.
var (
	errLiveFull   = errors.New("too many live clients")
	errLiveClosed = errors.New("live updates are shutting down")
)

// liveEvent is one server-sent event: its name and its JSON data.
type liveEvent struct {
	name string
	data []byte
}

// liveExecutions is the data of an "executions" event: the executions among the newest
// that appeared or changed since the previous poll. Items may be empty when one only
// left the window of RUNNING executions (it ended): clients reload what they show.
type liveExecutions struct {
	Items []executionindex.Item `json:"items"`
}

// liveAlerts is the data of an "alerts" event: the true number of open alerts and when
// the newest alert was raised.
type liveAlerts struct {
	Open   int64      `json:"open"`
	Newest *time.Time `json:"newest,omitempty"`
}

// liveClient is one open stream.
type liveClient struct {
	ch chan liveEvent // closed by the hub when it drops the client or shuts down
}

// liveHub runs one poller of the store for every live client of the server: while at
// least one client is connected it reads the newest executions, the newest RUNNING
// executions and the newest alert every interval, and the open-alert count every few
// intervals, and fans what changed out to every client. It reads the stores, not an
// in-process hook, so it sees what other processes wrote (several workers share the
// tables in AWS mode). The poller stops when the last client leaves; Close ends every
// stream and refuses new ones.
type liveHub struct {
	queries    *app.Queries
	interval   time.Duration
	maxClients int
	logger     *slog.Logger

	ctx    context.Context // cancelled by Close: ends a poll in flight
	cancel context.CancelFunc

	mu      sync.Mutex
	clients map[*liveClient]struct{}
	running bool // a poller goroutine runs
	closed  bool
	alerts  *liveEvent // the latest "alerts" event, sent to new clients at once
	poked   bool       // recount the open alerts on the next poll
	wg      sync.WaitGroup
}

func newLiveHub(queries *app.Queries, interval time.Duration, maxClients int, logger *slog.Logger) *liveHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &liveHub{queries: queries, interval: interval, maxClients: maxClients, logger: logger,
		ctx: ctx, cancel: cancel, clients: map[*liveClient]struct{}{}}
}

// subscribe adds a client, starting the poller if it is the first. errLiveFull when
// the server has maxClients already, errLiveClosed after Close.
func (h *liveHub) subscribe() (*liveClient, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, errLiveClosed
	}
	if len(h.clients) >= h.maxClients {
		return nil, errLiveFull
	}
	c := &liveClient{ch: make(chan liveEvent, liveClientBuffer)}
	if h.alerts != nil {
		c.ch <- *h.alerts
	}
	h.clients[c] = struct{}{}
	if !h.running {
		h.running = true
		h.wg.Add(1)
		go h.run()
	}
	return c, nil
}

// unsubscribe removes a client (its stream ended); removing it twice is harmless.
func (h *liveHub) unsubscribe(c *liveClient) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.clients[c]; ok {
		delete(h.clients, c)
		close(c.ch)
	}
}

// clientCount is how many streams are open.
func (h *liveHub) clientCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// poke makes the next poll recount the open alerts (an acknowledgement changed them).
func (h *liveHub) poke() {
	h.mu.Lock()
	h.poked = true
	h.mu.Unlock()
}

// Close ends every stream, refuses new ones and waits for the poller to stop. It is
// idempotent.
func (h *liveHub) Close() {
	h.mu.Lock()
	h.closed = true
	h.endLocked()
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// endStreams ends every open stream; new ones are still welcome.
func (h *liveHub) endStreams() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.endLocked()
}

func (h *liveHub) endLocked() {
	for c := range h.clients {
		delete(h.clients, c)
		close(c.ch)
	}
}

// broadcast sends ev to every client; a client whose buffer is full is dropped (its
// browser reconnects), so that one slow reader never holds up the others.
func (h *liveHub) broadcast(ev liveEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if ev.name == "alerts" {
		h.alerts = &ev
	}
	for c := range h.clients {
		select {
		case c.ch <- ev:
		default:
			delete(h.clients, c)
			close(c.ch)
			h.logger.Warn("live client dropped: it fell behind", "buffer", liveClientBuffer)
		}
	}
}

// pollState is what the poller saw last.
type pollState struct {
	execs       map[string]string // executionArn -> the item's JSON
	newestAlert string            // sessionId/kind/raisedAt of the newest alert
	openAlerts  int64
	counted     bool
	failing     bool
}

// run polls until no client is left or the hub closes.
func (h *liveHub) run() {
	defer h.wg.Done()
	var st pollState
	ticker := time.NewTicker(h.interval)
	defer ticker.Stop()
	for n := 0; ; n++ {
		h.mu.Lock()
		idle, poked := len(h.clients) == 0 || h.closed, h.poked
		h.poked = false
		if idle {
			h.running = false
			h.alerts = nil
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		err := h.poll(&st, n%alertCountEvery == 0 || poked)
		switch {
		case err != nil && h.ctx.Err() != nil:
			return
		case err != nil && !st.failing:
			st.failing = true
			h.logger.Warn("live updates: polling the store failed; retrying", "error", err)
		case err == nil && st.failing:
			st.failing = false
			h.logger.Info("live updates: polling the store works again")
		}
		select {
		case <-ticker.C:
		case <-h.ctx.Done():
			return
		}
	}
}

// poll reads the store once and broadcasts what changed. The first poll only takes
// the baseline for executions.
func (h *liveHub) poll(st *pollState, countAlerts bool) error {
	ctx, cancel := context.WithTimeout(h.ctx, max(5*time.Second, 4*h.interval))
	defer cancel()
	newest, err := h.queries.Executions(ctx, executionindex.Query{Limit: liveWindow})
	if err != nil {
		return fmt.Errorf("newest executions: %w", err)
	}
	running, err := h.queries.Executions(ctx, executionindex.Query{Status: "RUNNING", Limit: liveWindow})
	if err != nil {
		return fmt.Errorf("newest running executions: %w", err)
	}
	execs := make(map[string]string, 2*liveWindow)
	var changed []executionindex.Item
	for _, it := range append(newest.Items, running.Items...) {
		if _, seen := execs[it.ExecutionArn]; seen {
			continue
		}
		b, err := json.Marshal(it)
		if err != nil {
			return fmt.Errorf("encode execution %s: %w", it.ExecutionArn, err)
		}
		execs[it.ExecutionArn] = string(b)
		if st.execs != nil && st.execs[it.ExecutionArn] != string(b) {
			changed = append(changed, it)
		}
	}
	left := false
	for arn := range st.execs {
		if _, ok := execs[arn]; !ok {
			left = true
			break
		}
	}
	if st.execs != nil && (len(changed) > 0 || left) {
		if changed == nil {
			changed = []executionindex.Item{}
		}
		h.send("executions", liveExecutions{Items: changed})
	}
	st.execs = execs

	latest, err := h.queries.AlertPage(ctx, app.AlertFilter{State: app.AlertFilterAll, Limit: 1})
	if err != nil {
		return fmt.Errorf("newest alert: %w", err)
	}
	var newestAt *time.Time
	newestKey := ""
	if len(latest.Items) > 0 {
		a := latest.Items[0]
		newestAt = &a.RaisedAt
		newestKey = a.SessionID + "/" + string(a.Kind) + "/" + a.RaisedAt.String()
	}
	if newestKey != st.newestAlert || !st.counted {
		countAlerts = true
	}
	if !countAlerts {
		return nil
	}
	c, err := h.queries.AlertCounts(ctx, app.AlertFilter{State: app.AlertFilterOpen})
	if err != nil {
		return fmt.Errorf("count open alerts: %w", err)
	}
	if !st.counted || c.Total != st.openAlerts || newestKey != st.newestAlert {
		h.send("alerts", liveAlerts{Open: c.Total, Newest: newestAt})
	}
	st.counted, st.openAlerts, st.newestAlert = true, c.Total, newestKey
	return nil
}

// send encodes and broadcasts one event.
func (h *liveHub) send(name string, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.logger.Error("live updates: encode event", "event", name, "error", err)
		return
	}
	h.broadcast(liveEvent{name: name, data: b})
}
