package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// LiveConfig configures a live run.
type LiveConfig struct {
	// URL is the worker's base URL, e.g. http://127.0.0.1:8080.
	URL string
	// Token, if set, is sent as a bearer token.
	Token string
	// Clients is how many clients POST at once. Default 4.
	Clients int
	// Batch is how many NDJSON lines one POST carries. Default 1000.
	Batch int
	// Poll is how often the listing is read while waiting for visibility. Default 100ms.
	Poll time.Duration
	// Timeout bounds the whole run. Default 10m.
	Timeout time.Duration
	// Client is the HTTP client. Default: one with keep-alive for Clients connections.
	Client *http.Client
}

func (c *LiveConfig) setDefaults() {
	if c.Clients <= 0 {
		c.Clients = 4
	}
	if c.Batch <= 0 {
		c.Batch = 1000
	}
	if c.Poll <= 0 {
		c.Poll = 100 * time.Millisecond
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Minute
	}
	if c.Client == nil {
		c.Client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: c.Clients + 2}}
	}
}

// LiveReport is what a live run measured.
type LiveReport struct {
	Objects    int `json:"objects"`
	Posts      int `json:"posts"`
	Executions int `json:"executions"`
	// Refused counts POSTs answered 429 (pushed back) and sent again after Retry-After.
	Refused int64 `json:"refused"`
	// PostSeconds is from the first POST to the last answer.
	PostSeconds float64 `json:"postSeconds"`
	// VisibleSeconds is from the first POST until every execution was listed with its
	// final status.
	VisibleSeconds float64 `json:"visibleSeconds"`
	// EventsPerSecond is Objects / VisibleSeconds.
	EventsPerSecond float64 `json:"eventsPerSecond"`
	// AcceptedPerSecond is Objects / PostSeconds: what ingest took.
	AcceptedPerSecond float64 `json:"acceptedPerSecond"`
}

// Expected folds NDJSON lines of ingest objects into the final status of every
// execution, as the read models must show it. Objects that do not decode are skipped
// (the worker rejects them too); status changes are mapped with the default mapping.
func Expected(ctx context.Context, lines [][]byte) (map[string]string, error) {
	cfg := domain.MappingConfig{}
	cfg.SetDefaults()
	m := projections.NewModel()
	for _, l := range lines {
		in, err := domain.DecodeInput(l)
		if err != nil {
			continue
		}
		ev := in.Event
		if in.StatusChange != nil {
			e, err := domain.MapStatusChange(ctx, *in.StatusChange, nil, cfg)
			if err != nil {
				continue
			}
			ev = &e
		}
		m.Apply(ev)
	}
	out := map[string]string{}
	for _, s := range m.Sessions() {
		for _, it := range executionindex.ItemsOf(s, nil) {
			out[it.ExecutionArn] = it.Status
		}
	}
	return out, nil
}

// RunLive POSTs lines to cfg.URL/v1/events from cfg.Clients clients in NDJSON bodies of
// cfg.Batch lines (a body answered 429 is sent again after its Retry-After), then reads
// GET /v1/executions until every execution of want is listed with its status there, and
// reports the times from the first POST.
func RunLive(ctx context.Context, cfg LiveConfig, lines [][]byte, want map[string]string) (LiveReport, error) {
	cfg.setDefaults()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	rep := LiveReport{Objects: len(lines), Executions: len(want)}
	var bodies [][]byte
	for lo := 0; lo < len(lines); lo += cfg.Batch {
		bodies = append(bodies, bytes.Join(lines[lo:min(lo+cfg.Batch, len(lines))], []byte("\n")))
	}
	rep.Posts = len(bodies)

	start := time.Now()
	var next atomic.Int64
	var refused atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, cfg.Clients)
	for c := range cfg.Clients {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				if err := postUntilTaken(ctx, &cfg, bodies[i], &refused); err != nil {
					errs[c] = fmt.Errorf("post body %d: %w", i, err)
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return rep, err
	}
	rep.PostSeconds = time.Since(start).Seconds()
	rep.Refused = refused.Load()

	// Wait for the worker to report no projection backlog (its metrics are cheap to read,
	// unlike listing every execution), then check every execution once; the run ends
	// when the backlog was first seen at zero, if the check passes then.
	seenCaughtUp := time.Time{}
	if err := waitNoBacklog(ctx, &cfg); err == nil {
		seenCaughtUp = time.Now()
	}
	pending := make(map[string]string, len(want))
	for k, v := range want {
		pending[k] = v
	}
	checks := 0
	for len(pending) > 0 {
		checks++
		if err := dropVisible(ctx, &cfg, pending); err != nil {
			return rep, fmt.Errorf("read executions (%d not yet visible): %w", len(pending), err)
		}
		if len(pending) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			return rep, fmt.Errorf("%d executions not visible with their final status: %w", len(pending), ctx.Err())
		case <-time.After(cfg.Poll):
		}
	}
	end := time.Now()
	if checks == 1 && !seenCaughtUp.IsZero() {
		end = seenCaughtUp
	}
	rep.VisibleSeconds = end.Sub(start).Seconds()
	rep.EventsPerSecond = float64(rep.Objects) / rep.VisibleSeconds
	rep.AcceptedPerSecond = float64(rep.Objects) / rep.PostSeconds
	return rep, nil
}

func postUntilTaken(ctx context.Context, cfg *LiveConfig, body []byte, refused *atomic.Int64) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.URL+"/v1/events", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-ndjson")
		if cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.Token)
		}
		resp, err := cfg.Client.Do(req)
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusOK:
			return nil
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			refused.Add(1)
			wait := time.Second
			if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
				wait = time.Duration(s) * time.Second
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
		default:
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, msg)
		}
	}
}

// waitNoBacklog reads the worker's agentwatch_projection_backlog_events until it is 0;
// an error when the worker does not export it.
func waitNoBacklog(ctx context.Context, cfg *LiveConfig) error {
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+"/metrics", nil)
		if err != nil {
			return err
		}
		resp, err := cfg.Client.Do(req)
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		v, ok := gaugeValue(body, "agentwatch_projection_backlog_events")
		if !ok {
			return errors.New("the worker does not export agentwatch_projection_backlog_events")
		}
		if v == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// gaugeValue finds an unlabelled sample in a Prometheus text exposition.
func gaugeValue(exposition []byte, name string) (float64, bool) {
	for _, l := range bytes.Split(exposition, []byte("\n")) {
		if rest, ok := bytes.CutPrefix(l, []byte(name+" ")); ok {
			v, err := strconv.ParseFloat(string(bytes.TrimSpace(rest)), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// dropVisible pages through the newest executions and removes from pending every one
// listed with its expected status.
func dropVisible(ctx context.Context, cfg *LiveConfig, pending map[string]string) error {
	cursor := ""
	for {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, cfg.URL+"/v1/executions?"+q.Encode(), nil)
		if err != nil {
			return err
		}
		if cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+cfg.Token)
		}
		resp, err := cfg.Client.Do(req)
		if err != nil {
			return err
		}
		var page struct {
			Items []struct {
				ExecutionArn string `json:"executionArn"`
				Status       string `json:"status"`
			} `json:"items"`
			NextCursor *string `json:"nextCursor"`
		}
		err = json.NewDecoder(resp.Body).Decode(&page)
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("decode executions page: %w", err)
		}
		for _, it := range page.Items {
			if st, ok := pending[it.ExecutionArn]; ok && st == it.Status {
				delete(pending, it.ExecutionArn)
			}
		}
		if page.NextCursor == nil || *page.NextCursor == "" || len(pending) == 0 {
			return nil
		}
		cursor = *page.NextCursor
	}
}

// SplitLines splits NDJSON into its non-blank lines.
func SplitLines(ndjson []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(ndjson, []byte("\n")) {
		if l = bytes.TrimSpace(l); len(l) > 0 {
			out = append(out, l)
		}
	}
	return slices.Clip(out)
}
