package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
)

// benchResult is the final JSON line of `agentwatch bench`.
type benchResult struct {
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

func newBenchCommand(g *globals) *cobra.Command {
	var events int
	var seed uint64
	var keep bool
	var cpuProfile string
	var parallel int
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Generate a seeded journal of N events, load it, rebuild the read models, and report the speed",
		Long: "bench generates a journal with the simulator, loads it into a fresh store (a temporary data\n" +
			"directory unless --data-dir is given), rebuilds every read model from it, and prints events,\n" +
			"seconds, events/s, peak RSS (and on DynamoDB the requests per event), ending with one line of JSON.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data-dir") && g.backend == "sqlite" {
				dir, err := os.MkdirTemp("", "agentwatch-bench-")
				if err != nil {
					return err
				}
				if !keep {
					defer os.RemoveAll(dir)
				}
				g.dataDir = dir
			}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				g.cpuProfile = f
			}
			return g.bench(cmd.Context(), events, seed, parallel)
		},
	}
	f := cmd.Flags()
	f.IntVar(&events, "events", 1_000_000, "journal events to generate")
	f.Uint64Var(&seed, "seed", 1, "simulator seed")
	f.BoolVar(&keep, "keep", false, "keep the temporary data directory")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the rebuild to this file")
	f.IntVar(&parallel, "parallel", 0, "the rebuild's --parallel: journal parts read at once (0: the store's default)")
	cmd.AddCommand(newBenchLiveCommand(g))
	return cmd
}

func (g *globals) bench(ctx context.Context, n int, seed uint64, parallel int) error {
	res := benchResult{Backend: g.backend, Parallel: parallel}
	fmt.Fprintf(g.out, "generating %d events (seed %d)...\n", n, seed)
	evs, err := benchEvents(n, seed)
	if err != nil {
		return err
	}
	var journal app.JournalAppender
	var rb *app.Rebuilder
	var gens app.GenerationStore
	cfg := app.Config{}
	populate := []fx.Option{app.RebuildModule, fx.Populate(&journal, &rb, &gens)}
	var cmp awsComparison
	if g.backend == "aws" {
		populate = append(populate, fx.Populate(&cmp.client, &cmp.counter, &cmp.cfg))
	}
	var keep []domain.Event
	return g.withApp(ctx, cfg, populate, func(ctx context.Context) error {
		start := time.Now()
		const chunk = 20_000
		for i := 0; i < len(evs); i += chunk {
			if _, err := journal.Append(ctx, evs[i:min(i+chunk, len(evs))]); err != nil {
				return fmt.Errorf("load journal: %w", err)
			}
		}
		res.LoadSeconds = time.Since(start).Seconds()
		fmt.Fprintf(g.out, "journal loaded: %d events in %.2fs\n", len(evs), res.LoadSeconds)
		if g.backend == "aws" {
			keep = evs
		}
		evs = nil
		// The rebuild is measured on its own: the load's WAL is copied into the database
		// first, as the worker's checkpointer would have done by the time anyone rebuilds.
		if c, ok := journal.(interface{ Checkpoint(context.Context) error }); ok {
			if err := c.Checkpoint(ctx); err != nil {
				return err
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

		var before dynamodb.RequestCounts
		if cmp.counter != nil {
			before = cmp.counter.Snapshot()
		}
		if g.cpuProfile != nil {
			if err := pprof.StartCPUProfile(g.cpuProfile); err != nil {
				return err
			}
		}
		heapPeak := sampleHeapPeak()
		start = time.Now()
		rep, err := rb.Rebuild(ctx, app.RebuildOptions{Parallel: parallel})
		res.PeakHeapBytes = heapPeak()
		if g.cpuProfile != nil {
			pprof.StopCPUProfile()
		}
		if err != nil {
			return err
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
		fmt.Fprintf(g.out, "rebuild: %d events, %d sessions in %.3fs = %.0f events/s (scan+fold %.3fs, write %.3fs), peak RSS %d MiB (%s; whole run %d MiB), peak Go heap %d MiB\n",
			res.Events, res.Sessions, res.RebuildSeconds, res.EventsPerSecond, res.ScanFoldSeconds, res.WriteSeconds,
			res.PeakRSSBytes>>20, res.PeakRSSScope, res.ProcessPeakRSSBytes>>20, res.PeakHeapBytes>>20)
		if cmp.counter != nil {
			d := cmp.counter.Snapshot().Sub(before)
			res.Requests, res.WriteRequests = d.Total, d.Writes
			res.RequestsPerEvent = float64(d.Total) / float64(res.Events)
			res.WritesPerEvent = float64(d.Writes) / float64(res.Events)
			fmt.Fprintf(g.out, "rebuild on DynamoDB: %d requests (%.4f per event), %d write requests (%.4f per event)\n",
				d.Total, res.RequestsPerEvent, d.Writes, res.WritesPerEvent)
			cmp.gens, cmp.logger = gens, g.logger()
			cur, err := gens.CurrentGeneration(ctx)
			if err != nil {
				return err
			}
			naiveGen, routerGen := cur+50, cur+51
			defer func() {
				_ = gens.DropGeneration(context.Background(), naiveGen)
				_ = gens.DropGeneration(context.Background(), routerGen)
			}()
			took, writes, err := cmp.naive(ctx, naiveGen, keep)
			if err != nil {
				return err
			}
			res.NaiveSeconds, res.NaiveWrites = took.Seconds(), writes
			res.NaiveTimeRatio = res.NaiveSeconds / res.RebuildSeconds
			res.NaiveWritesRatio = float64(writes) / float64(max(res.WriteRequests, 1))
			fmt.Fprintf(g.out, "naive projector (one write per event per read model, in order): %.3fs, %d write requests: %.1fx the time, %.1fx the write requests of the rebuild\n",
				res.NaiveSeconds, writes, res.NaiveTimeRatio, res.NaiveWritesRatio)
			took, _, err = cmp.router(ctx, routerGen, keep)
			if err != nil {
				return err
			}
			res.RouterSeconds = took.Seconds()
			res.RouterTimeRatio = res.RouterSeconds / res.RebuildSeconds
			fmt.Fprintf(g.out, "one message at a time through a GoChannel router: %.3fs: %.1fx the time of the rebuild\n", res.RouterSeconds, res.RouterTimeRatio)
		}
		b, err := json.Marshal(res)
		if err != nil {
			return err
		}
		fmt.Fprintln(g.out, string(b))
		return nil
	})
}

// benchEvents generates n journal events (no duplicates, nothing malformed) through the
// same decoding and mapping as ingest.
func benchEvents(n int, seed uint64) ([]domain.Event, error) {
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

// resetPeakRSS hands the memory the process no longer uses back to the system and
// resets its peak resident set size (Linux: /proc/self/clear_refs), so that peakRSS
// then measures what comes after. It reports whether the reset took.
func resetPeakRSS() bool {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return false
	}
	_, ok := vmHWM()
	return ok
}

// peakRSS is the process's peak resident set size since the last resetPeakRSS, or over
// its whole life where that cannot be reset.
func peakRSS() int64 {
	if v, ok := vmHWM(); ok {
		return v
	}
	return lifetimePeakRSS()
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// sampleHeapPeak samples the Go heap's object bytes every few milliseconds until the
// returned function is called, which returns the largest sample.
func sampleHeapPeak() func() int64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		peak := read()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, read())
			case <-stop:
				done <- max(peak, read())
				return
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}
