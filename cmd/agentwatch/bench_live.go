package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app/bench"
	"github.com/agentwatch/agentwatch/app/simulate"
)

// liveResult is the final JSON line of `agentwatch bench live`.
type liveResult struct {
	bench.LiveReport
	// PeakWALBytes is the largest WAL seen while the run went on (embedded worker only).
	PeakWALBytes int64 `json:"peakWalBytes,omitempty"`
}

func newBenchLiveCommand(g *globals) *cobra.Command {
	var events, clients, batch int
	var seed uint64
	var target, tokenFile, cpuProfile string
	cmd := &cobra.Command{
		Use:   "live",
		Short: "Measure the live path end to end: clients POST simulated events, until every execution is visible with its final status",
		Long: "live generates N simulated events, POSTs them to /v1/events from several clients in NDJSON\n" +
			"bodies (a body pushed back with 429 is sent again after Retry-After), and reads\n" +
			"/v1/executions until every execution is listed with its final status. It reports\n" +
			"events/s from the first POST until then. Without --url it runs an embedded worker on a\n" +
			"temporary data directory (or --data-dir) and also reports the WAL's peak size.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			cfg := simulate.DefaultConfig()
			cfg.Events, cfg.Seed = events, seed
			objs, _, err := simulate.Generate(cfg)
			if err != nil {
				return err
			}
			lines := make([][]byte, len(objs))
			for i := range objs {
				lines[i] = []byte(strings.TrimSpace(string(objs[i].Body)))
			}
			want, err := bench.Expected(ctx, lines)
			if err != nil {
				return err
			}
			live := bench.LiveConfig{URL: target, Clients: clients, Batch: batch}
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					return fmt.Errorf("--token-file: %w", err)
				}
				live.Token = strings.TrimSpace(string(b))
			}
			var res liveResult
			if target == "" {
				if !cmd.Flags().Changed("data-dir") {
					dir, err := os.MkdirTemp("", "agentwatch-live-")
					if err != nil {
						return err
					}
					defer os.RemoveAll(dir)
					g.dataDir = dir
				}
				stop, url, err := g.startBenchWorker(ctx)
				if err != nil {
					return err
				}
				defer stop()
				live.URL = url
			}
			var peak atomic.Int64
			sampled := make(chan struct{})
			sampleCtx, cancelSample := context.WithCancel(ctx)
			defer cancelSample()
			go func() {
				defer close(sampled)
				wal := filepath.Join(g.dataDir, sqlite.FileName+"-wal")
				t := time.NewTicker(20 * time.Millisecond)
				defer t.Stop()
				for {
					if fi, err := os.Stat(wal); err == nil && fi.Size() > peak.Load() {
						peak.Store(fi.Size())
					}
					select {
					case <-sampleCtx.Done():
						return
					case <-t.C:
					}
				}
			}()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			fmt.Fprintf(g.out, "posting %d objects (%d executions) from %d clients in bodies of %d to %s...\n",
				len(lines), len(want), live.Clients, live.Batch, live.URL)
			res.LiveReport, err = bench.RunLive(ctx, live, lines, want)
			cancelSample()
			<-sampled
			if err != nil {
				return err
			}
			res.PeakWALBytes = peak.Load()
			fmt.Fprintf(g.out, "accepted in %.2fs (%.0f events/s, %d bodies pushed back); all %d executions visible after %.2fs: %.0f events/s; peak WAL %.1f MiB\n",
				res.PostSeconds, res.AcceptedPerSecond, res.Refused, res.Executions, res.VisibleSeconds, res.EventsPerSecond,
				float64(res.PeakWALBytes)/(1<<20))
			return printJSON(g.out, res)
		},
	}
	f := cmd.Flags()
	f.IntVar(&events, "events", 100_000, "simulated events to post")
	f.Uint64Var(&seed, "seed", 1, "simulator seed")
	f.IntVar(&clients, "clients", 4, "clients posting at once")
	f.IntVar(&batch, "batch", 1000, "NDJSON lines per POST")
	f.StringVar(&target, "url", "", "a running worker's base URL (default: start an embedded worker)")
	f.StringVar(&tokenFile, "token-file", "", "bearer token for the worker's API")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the run (the embedded worker and the clients) to this file")
	return cmd
}

// startBenchWorker starts an embedded worker on g.dataDir with its HTTP API on a free
// loopback port, and returns how to stop it and its URL.
func (g *globals) startBenchWorker(ctx context.Context) (func(), string, error) {
	saved := g.logLevel
	g.logLevel = "warn"
	defer func() { g.logLevel = saved }()
	o := &runOptions{httpAddr: "127.0.0.1:0", interval: 5 * time.Second, shutdown: 30 * time.Second}
	fxApp, server, err := g.workerApp(o, g.logger())
	if err != nil {
		return nil, "", err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := fxApp.Start(startCtx); err != nil {
		return nil, "", err
	}
	stop := func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = fxApp.Stop(stopCtx)
	}
	return stop, "http://" + server.Addr(), nil
}
