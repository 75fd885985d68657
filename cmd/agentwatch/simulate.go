package main

import (
	"bufio"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentwatch/agentwatch/app/simulate"
)

func newSimulateCommand(g *globals) *cobra.Command {
	cfg := simulate.DefaultConfig()
	var out string
	cmd := &cobra.Command{
		Use:   "simulate",
		Short: "Generate realistic agent traffic as NDJSON (the input ingest and POST /v1/events take)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			objs, _, err := simulate.Generate(cfg)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if out != "" && out != "-" {
				f, err := os.Create(out)
				if err != nil {
					return fmt.Errorf("create %s: %w", out, err)
				}
				defer f.Close()
				w = f
			}
			bw := bufio.NewWriterSize(w, 1<<20)
			if err := simulate.WriteNDJSON(bw, objs); err != nil {
				return fmt.Errorf("write: %w", err)
			}
			return bw.Flush()
		},
	}
	f := cmd.Flags()
	f.IntVar(&cfg.Events, "events", simulate.DefaultEvents, "about how many objects to generate")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed: the same seed gives the same output")
	f.IntVar(&cfg.Agents, "agents", 5, "how many agents")
	f.Float64Var(&cfg.DuplicateRate, "duplicates", cfg.DuplicateRate, "share of objects delivered twice")
	f.Float64Var(&cfg.ReorderRate, "reorder", cfg.ReorderRate, "share of objects delivered out of order")
	f.Float64Var(&cfg.MalformedRate, "malformed", 0, "share of malformed objects (poison)")
	f.StringVar(&out, "out", "", "write to this file instead of stdout")
	return cmd
}
