package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
)

// globals are the flags every subcommand takes.
type globals struct {
	dataDir      string
	backend      string
	tablePrefix  string
	journalTable string
	logLevel     string
	logFormat    string
	asJSON       bool
	out          io.Writer
	// awsFeeds are the run command's AWS feed flags.
	awsFeeds *awsFeedFlags
}

func newRootCommand() *cobra.Command {
	g := &globals{out: os.Stdout}
	root := &cobra.Command{
		Use:   "agentwatch",
		Short: "Know what your AI agents on AWS Step Functions are doing",
		Long: "agentwatch projects the session journal of AI agents running on AWS Step Functions\n" +
			"into an execution index, per-agent statistics and a stuck-session detector.",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.out = cmd.OutOrStdout()
			switch g.backend {
			case "sqlite", "aws":
			default:
				return fmt.Errorf("--backend: must be sqlite or aws, not %q", g.backend)
			}
			return nil
		},
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", envOr("AGENTWATCH_DATA_DIR", "./data"), "directory of the embedded database (env AGENTWATCH_DATA_DIR)")
	pf.StringVar(&g.backend, "backend", envOr("AGENTWATCH_BACKEND", "sqlite"), "storage backend: sqlite or aws (env AGENTWATCH_BACKEND)")
	pf.StringVar(&g.tablePrefix, "table-prefix", envOr("AGENTWATCH_TABLE_PREFIX", "agentwatch"), "DynamoDB table name prefix in aws mode (env AGENTWATCH_TABLE_PREFIX)")
	pf.StringVar(&g.journalTable, "journal-table", envOr("AGENTWATCH_JOURNAL_TABLE", ""), "the agents' journal table in aws mode (default <table-prefix>-journal; env AGENTWATCH_JOURNAL_TABLE)")
	pf.StringVar(&g.logLevel, "log-level", envOr("AGENTWATCH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env AGENTWATCH_LOG_LEVEL)")
	pf.StringVar(&g.logFormat, "log-format", envOr("AGENTWATCH_LOG_FORMAT", "text"), "log format: text or json (env AGENTWATCH_LOG_FORMAT)")
	root.AddCommand(
		newRunCommand(g),
		newIngestCommand(g),
		newExecutionsCommand(g),
		newSessionsCommand(g),
		newStatsCommand(g),
		newStuckCommand(g),
		newAlertsCommand(g),
		newQuarantineCommand(g),
		newSimulateCommand(g),
		newRebuildCommand(g),
		newBenchCommand(g),
		newMigrateCommand(g),
		newDLQCommand(g),
	)
	root.AddCommand(newBackfillCommand(g))
	root.AddCommand(newExportCommand(g))
	root.AddCommand(newHealthcheckCommand())
	return root
}

func envOr(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

// logger builds the process logger on stderr.
func (g *globals) logger() *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if strings.EqualFold(g.logFormat, "json") {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// backendModules are the fx modules of the selected backend.
func (g *globals) backendModules(worker bool) ([]fx.Option, error) {
	switch g.backend {
	case "sqlite":
		opts := []fx.Option{fx.Supply(sqlite.Config{DataDir: g.dataDir}), sqlite.Module}
		if worker {
			opts = append(opts, sqlite.WorkerFeedModule, app.EmbeddedFeedModule)
		}
		return opts, nil
	case "aws":
		opts := []fx.Option{fx.Supply(g.dynamoConfig()), dynamodb.Module}
		if worker {
			feeds, err := g.awsWorkerModules()
			if err != nil {
				return nil, err
			}
			opts = append(opts, feeds...)
		}
		return opts, nil
	}
	return nil, fmt.Errorf("--backend %s: must be sqlite or aws", g.backend)
}

// dynamoConfig is the AWS backend's table configuration from the flags.
func (g *globals) dynamoConfig() dynamodb.Config {
	cfg := dynamodb.Config{TablePrefix: g.tablePrefix, JournalTable: g.journalTable}
	cfg.SetDefaults()
	return cfg
}

// withApp builds an fx app of the backend and the core use cases plus extra, starts
// it, runs fn, and stops it.
func (g *globals) withApp(ctx context.Context, cfg app.Config, extra []fx.Option, fn func(ctx context.Context) error) error {
	mods, err := g.backendModules(false)
	if err != nil {
		return err
	}
	cfg.SetDefaults()
	opts := append([]fx.Option{fx.Supply(cfg), app.CoreModule}, mods...)
	return g.runModules(ctx, append(opts, extra...), fn)
}

// runModules builds an fx app of opts (and the logger), starts it, runs fn, and stops
// it.
func (g *globals) runModules(ctx context.Context, opts []fx.Option, fn func(ctx context.Context) error) error {
	fxApp := fx.New(append([]fx.Option{fx.Supply(g.logger()), fx.NopLogger}, opts...)...)
	if err := fxApp.Err(); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := fxApp.Start(startCtx); err != nil {
		return err
	}
	runErr := fn(ctx)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelStop()
	if err := fxApp.Stop(stopCtx); err != nil && runErr == nil {
		runErr = err
	}
	return runErr
}
