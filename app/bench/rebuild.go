package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// RebuildResult is what a rebuild run measured: the final JSON line of `agentwatch
// bench`.
type RebuildResult struct {
	Backend  string `json:"backend"`
	Events   int64  `json:"events"`
	Sessions int    `json:"sessions"`
	// Parallel is the rebuild's --parallel (0: the store's default).
	Parallel         int     `json:"parallel"`
	LoadSeconds      float64 `json:"journalLoadSeconds"`
	RebuildSeconds   float64 `json:"rebuildSeconds"`
	EventsPerSecond  float64 `json:"eventsPerSecond"`
	ScanFoldSeconds  float64 `json:"scanFoldSeconds"`
	WriteSeconds     float64 `json:"writeSeconds"`
	Requests         int64   `json:"dynamodbRequests,omitempty"`
	RequestsPerEvent float64 `json:"dynamodbRequestsPerEvent,omitempty"`
	WriteRequests    int64   `json:"dynamodbWriteRequests,omitempty"`
	WritesPerEvent   float64 `json:"dynamodbWriteRequestsPerEvent,omitempty"`
	PeakRSSBytes     int64   `json:"peakRssBytes"`
	// PeakRSSScope says what PeakRSSBytes covers: "rebuild" (the peak was reset after
	// the journal was generated and loaded) or "process" (the whole run).
	PeakRSSScope        string `json:"peakRssScope"`
	ProcessPeakRSSBytes int64  `json:"processPeakRssBytes"`
	// PeakHeapBytes is the largest Go heap (live and not yet collected objects) seen
	// during the rebuild, sampled every few milliseconds: what the fold holds, without
	// the embedded store's page cache and mapped journal that RSS counts.
	PeakHeapBytes    int64   `json:"peakHeapBytes"`
	NaiveSeconds     float64 `json:"naiveSeconds,omitempty"`
	NaiveWrites      int64   `json:"naiveWriteRequests,omitempty"`
	NaiveTimeRatio   float64 `json:"naiveTimeRatio,omitempty"`
	NaiveWritesRatio float64 `json:"naiveWriteRequestsRatio,omitempty"`
	RouterSeconds    float64 `json:"routerSeconds,omitempty"`
	RouterTimeRatio  float64 `json:"routerTimeRatio,omitempty"`
}

// RebuildConfig configures a rebuild run.
type RebuildConfig struct {
	// Backend names the store in the report (sqlite, aws).
	Backend string
	// Events is how many journal events to generate; Seed seeds the simulator.
	Events int
	Seed   uint64
	// Parallel is the rebuild's RebuildOptions.Parallel.
	Parallel int
	// CPUProfile, when set, receives a CPU profile of the rebuild.
	CPUProfile io.Writer
}

// RequestCounts are the requests a store made, as a RequestCounter reports them.
type RequestCounts struct {
	// Total counts every request; Writes those that write.
	Total, Writes int64
}

// RequestCounter reports how many requests a store made so far (DynamoDB).
type RequestCounter interface {
	Requests() RequestCounts
}

// RebuildStore is what a rebuild run uses of the store under test.
type RebuildStore struct {
	Journal   app.JournalAppender
	Rebuilder *app.Rebuilder
	Gens      app.GenerationStore
	// Registry holds the read models the per-message comparison projects.
	Registry *projections.Registry
	// Requests, when set, counts the store's requests; the report then says how many
	// the rebuild made per event.
	Requests RequestCounter
	// Naive, when set, also projects the journal the naive way and one message at a
	// time through a router (Comparison), for the report's ratios.
	Naive *Comparison
}

// RunRebuild generates a seeded journal, loads it into the store, rebuilds every read
// model from it and reports the speed, writing progress lines and the final JSON line to
// out.
func RunRebuild(ctx context.Context, cfg RebuildConfig, st RebuildStore, out io.Writer) (RebuildResult, error) {
	res := RebuildResult{Backend: cfg.Backend, Parallel: cfg.Parallel}
	fmt.Fprintf(out, "generating %d events (seed %d)...\n", cfg.Events, cfg.Seed)
	evs, err := Events(cfg.Events, cfg.Seed)
	if err != nil {
		return res, err
	}
	start := time.Now()
	const chunk = 20_000
	for i := 0; i < len(evs); i += chunk {
		if _, err := st.Journal.Append(ctx, evs[i:min(i+chunk, len(evs))]); err != nil {
			return res, fmt.Errorf("load journal: %w", err)
		}
	}
	res.LoadSeconds = time.Since(start).Seconds()
	fmt.Fprintf(out, "journal loaded: %d events in %.2fs\n", len(evs), res.LoadSeconds)
	var keep []domain.Event
	if st.Naive != nil {
		keep = evs
	}
	evs = nil
	// The rebuild is measured on its own: the load's WAL is copied into the database
	// first, as the worker's checkpointer would have done by the time anyone rebuilds.
	if c, ok := st.Journal.(interface{ Checkpoint(context.Context) error }); ok {
		if err := c.Checkpoint(ctx); err != nil {
			return res, err
		}
	}
	// And the kernel's writeback of all that is not left to compete with it.
	syncFiles()
	runtime.GC()
	loadPeak := peakRSS()
	res.PeakRSSScope = "process"
	if resetPeakRSS() {
		res.PeakRSSScope = "rebuild"
	}

	var before RequestCounts
	if st.Requests != nil {
		before = st.Requests.Requests()
	}
	if cfg.CPUProfile != nil {
		if err := pprof.StartCPUProfile(cfg.CPUProfile); err != nil {
			return res, err
		}
	}
	heapPeak := sampleHeapPeak()
	start = time.Now()
	rep, err := st.Rebuilder.Rebuild(ctx, app.RebuildOptions{Parallel: cfg.Parallel})
	res.PeakHeapBytes = heapPeak()
	if cfg.CPUProfile != nil {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return res, err
	}
	res.RebuildSeconds = time.Since(start).Seconds()
	res.Events, res.Sessions = rep.Events, rep.Sessions
	res.EventsPerSecond = float64(rep.Events) / res.RebuildSeconds
	res.ScanFoldSeconds, res.WriteSeconds = rep.ScanFold.Seconds(), rep.Load.Seconds()
	res.PeakRSSBytes = peakRSS()
	res.ProcessPeakRSSBytes = max(loadPeak, res.PeakRSSBytes)
	if res.PeakRSSScope != "rebuild" {
		res.PeakRSSBytes = res.ProcessPeakRSSBytes
	}
	fmt.Fprintf(out, "rebuild: %d events, %d sessions in %.3fs = %.0f events/s (scan+fold %.3fs, write %.3fs), peak RSS %d MiB (%s; whole run %d MiB), peak Go heap %d MiB\n",
		res.Events, res.Sessions, res.RebuildSeconds, res.EventsPerSecond, res.ScanFoldSeconds, res.WriteSeconds,
		res.PeakRSSBytes>>20, res.PeakRSSScope, res.ProcessPeakRSSBytes>>20, res.PeakHeapBytes>>20)
	if st.Requests != nil {
		now := st.Requests.Requests()
		res.Requests, res.WriteRequests = now.Total-before.Total, now.Writes-before.Writes
		res.RequestsPerEvent = float64(res.Requests) / float64(res.Events)
		res.WritesPerEvent = float64(res.WriteRequests) / float64(res.Events)
		fmt.Fprintf(out, "rebuild on DynamoDB: %d requests (%.4f per event), %d write requests (%.4f per event)\n",
			res.Requests, res.RequestsPerEvent, res.WriteRequests, res.WritesPerEvent)
	}
	if st.Naive != nil {
		if err := compare(ctx, st, keep, &res, out); err != nil {
			return res, err
		}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return res, err
	}
	fmt.Fprintln(out, string(b))
	return res, nil
}

// compare runs the naive projector and the per-message router on the same events, each
// into a scratch generation that is dropped afterwards, and adds their ratios to res.
func compare(ctx context.Context, st RebuildStore, evs []domain.Event, res *RebuildResult, out io.Writer) error {
	cur, _, err := st.Gens.CurrentGeneration(ctx)
	if err != nil {
		return err
	}
	naiveGen, routerGen := cur+50, cur+51
	defer func() {
		_ = st.Gens.DropGeneration(context.Background(), naiveGen)
		_ = st.Gens.DropGeneration(context.Background(), routerGen)
	}()
	took, writes, err := st.Naive.Naive(ctx, st.Gens, naiveGen, evs)
	if err != nil {
		return err
	}
	res.NaiveSeconds, res.NaiveWrites = took.Seconds(), writes
	res.NaiveTimeRatio = res.NaiveSeconds / res.RebuildSeconds
	res.NaiveWritesRatio = float64(writes) / float64(max(res.WriteRequests, 1))
	fmt.Fprintf(out, "naive projector (one write per event per read model, in order): %.3fs, %d write requests: %.1fx the time, %.1fx the write requests of the rebuild\n",
		res.NaiveSeconds, writes, res.NaiveTimeRatio, res.NaiveWritesRatio)
	took, err = Router(ctx, st.Registry, st.Gens, routerGen, evs)
	if err != nil {
		return err
	}
	res.RouterSeconds = took.Seconds()
	res.RouterTimeRatio = res.RouterSeconds / res.RebuildSeconds
	fmt.Fprintf(out, "one message at a time through a GoChannel router: %.3fs: %.1fx the time of the rebuild\n", res.RouterSeconds, res.RouterTimeRatio)
	return nil
}

// Events generates n journal events (no duplicates, nothing malformed) through the same
// decoding and mapping as ingest.
func Events(n int, seed uint64) ([]domain.Event, error) {
	objs, _, err := simulate.Generate(simulate.Config{Seed: seed, Events: n})
	if err != nil {
		return nil, err
	}
	var mapping domain.MappingConfig
	mapping.SetDefaults()
	out := make([]domain.Event, 0, len(objs))
	for _, o := range objs {
		in, err := domain.DecodeInput(o.Body)
		if err != nil {
			return nil, fmt.Errorf("generated object of session %s: %w", o.SessionID, err)
		}
		if in.Event != nil {
			out = append(out, *in.Event)
			continue
		}
		ev, err := domain.MapStatusChange(context.Background(), *in.StatusChange, nil, mapping)
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
