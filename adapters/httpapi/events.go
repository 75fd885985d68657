package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Timing of a live stream.
const (
	// liveRetry is how long a browser waits before it reconnects a stream that ended.
	liveRetry = 2 * time.Second
	// livePing is how often an idle stream gets a comment line, so that proxies keep it
	// open and a client that went away is noticed.
	livePing = 15 * time.Second
	// liveWriteTimeout bounds one write to a stream: a client that stops reading is
	// dropped instead of holding a goroutine.
	liveWriteTimeout = 10 * time.Second
)

// streamLive answers GET /v1/live with server-sent events (text/event-stream):
//
//	event: hello       {"intervalMs": N}            once, when the stream opens
//	event: executions  {"items": [execution items]} the newest executions changed
//	event: alerts      {"open": N, "newest": T}     the open-alert count or the newest alert changed
//
// An "alerts" event also comes right after "hello" once the server knows the count.
// Every server's streams share one poller of the store (see liveHub). Over
// Config.MaxLiveClients streams, or while shutting down, it answers 503 with
// Retry-After: the History page then polls instead.
func (s *Server) streamLive(w http.ResponseWriter, r *http.Request) {
	c, err := s.live.subscribe()
	if err != nil {
		w.Header().Set("Retry-After", "30")
		msg := "live updates are shutting down; poll instead"
		if errors.Is(err, errLiveFull) {
			msg = fmt.Sprintf("too many live streams (the limit is %d); poll instead", s.cfg.MaxLiveClients)
		}
		writeJSON(w, r, http.StatusServiceUnavailable, errorBody{Error: msg})
		return
	}
	defer s.live.unsubscribe(c)

	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	// Proxies such as nginx buffer answers unless told not to.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)

	var buf bytes.Buffer
	write := func() bool {
		if err := rc.SetWriteDeadline(time.Now().Add(liveWriteTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return false
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return false
		}
		buf.Reset()
		return rc.Flush() == nil
	}
	fmt.Fprintf(&buf, "retry: %d\n\n", liveRetry.Milliseconds())
	writeEvent(&buf, "hello", []byte(`{"intervalMs":`+strconv.FormatInt(s.cfg.LiveInterval.Milliseconds(), 10)+`}`))
	if !write() {
		return
	}
	ping := time.NewTicker(livePing)
	defer ping.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-c.ch:
			if !ok {
				return
			}
			writeEvent(&buf, ev.name, ev.data)
		case <-ping.C:
			buf.WriteString(": ping\n\n")
		}
		if !write() {
			return
		}
	}
}

// writeEvent renders one event. data is one line of JSON (json.Marshal escapes
// newlines), as the format requires.
func writeEvent(buf *bytes.Buffer, name string, data []byte) {
	buf.WriteString("event: ")
	buf.WriteString(name)
	buf.WriteString("\ndata: ")
	buf.Write(data)
	buf.WriteString("\n\n")
}
