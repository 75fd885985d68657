package main

import (
	"context"
	"os"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/bench"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

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
		Args: args(cobra.NoArgs),
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
			cfg := bench.RebuildConfig{Backend: g.backend, Events: events, Seed: seed, Parallel: parallel}
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer f.Close()
				cfg.CPUProfile = f
			}
			return g.benchRebuild(cmd.Context(), cfg)
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

// benchRebuild wires the store under test into bench.RunRebuild: on DynamoDB with its
// request counter and the naive comparison.
func (g *globals) benchRebuild(ctx context.Context, cfg bench.RebuildConfig) error {
	var st bench.RebuildStore
	opts := []fx.Option{fx.Populate(&st.Journal, &st.Rebuilder, &st.Gens, &st.Registry)}
	var client *awsddb.Client
	var counter *dynamodb.RequestCounter
	var dcfg dynamodb.Config
	if g.backend == "aws" {
		opts = append(opts, fx.Populate(&client, &counter, &dcfg))
	}
	return g.withApp(ctx, app.Config{}, opts, func(ctx context.Context) error {
		if counter != nil {
			st.Requests = requestCounts{counter}
			st.Naive = &bench.Comparison{Client: client, Requests: st.Requests, Tables: func(gen int) bench.NaiveTables {
				return bench.NaiveTables{Executions: dcfg.ReadModelTable(executionindex.Table, gen),
					AgentStats: dcfg.ReadModelTable(agentstats.Table, gen), Stuck: dcfg.ReadModelTable(stuck.Table, gen)}
			}}
		}
		_, err := bench.RunRebuild(ctx, cfg, st, g.out)
		return err
	})
}

// requestCounts reads the DynamoDB client's request counter for the bench.
type requestCounts struct{ c *dynamodb.RequestCounter }

func (r requestCounts) Requests() bench.RequestCounts {
	s := r.c.Snapshot()
	return bench.RequestCounts{Total: s.Total, Writes: s.Writes}
}
