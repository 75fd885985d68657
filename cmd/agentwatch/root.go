package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/cmd/agentwatch/display"
	"github.com/agentwatch/agentwatch/domain"
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
	color        string
	out          io.Writer
	// style says how tables are drawn: width and colour (output.go).
	style display.Style
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
				return usagef("--backend: must be sqlite or aws, not %q", g.backend)
			}
			var level slog.Level
			if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
				return usagef("--log-level: must be debug, info, warn or error, not %q", g.logLevel)
			}
			if f := strings.ToLower(g.logFormat); f != "text" && f != "json" {
				return usagef("--log-format: must be text or json, not %q", g.logFormat)
			}
			if err := g.setStyle(cmd.OutOrStdout()); err != nil {
				return err
			}
			return g.checkDatabase(cmd)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&g.dataDir, "data-dir", envOr("AGENTWATCH_DATA_DIR", "./data"), "directory of the embedded database (env AGENTWATCH_DATA_DIR)")
	pf.StringVar(&g.backend, "backend", envOr("AGENTWATCH_BACKEND", "sqlite"), "storage backend: sqlite or aws (env AGENTWATCH_BACKEND)")
	pf.StringVar(&g.tablePrefix, "table-prefix", envOr("AGENTWATCH_TABLE_PREFIX", "agentwatch"), "DynamoDB table name prefix in aws mode (env AGENTWATCH_TABLE_PREFIX)")
	pf.StringVar(&g.journalTable, "journal-table", envOr("AGENTWATCH_JOURNAL_TABLE", ""), "the agents' journal table in aws mode (default <table-prefix>-journal; env AGENTWATCH_JOURNAL_TABLE)")
	pf.StringVar(&g.logLevel, "log-level", envOr("AGENTWATCH_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env AGENTWATCH_LOG_LEVEL)")
	pf.StringVar(&g.logFormat, "log-format", envOr("AGENTWATCH_LOG_FORMAT", "text"), "log format: text or json (env AGENTWATCH_LOG_FORMAT)")
	pf.StringVar(&g.color, "color", "auto", "colour in tables: auto (on a terminal, unless NO_COLOR is set), always or never")
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

// needsDatabaseKey annotates the commands that read an existing store: with the
// embedded backend they refuse a --data-dir that holds no database, rather than create
// an empty one and answer from it.
const needsDatabaseKey = "agentwatch/needs-database"

// needsDatabase marks cmd as reading an existing store.
func needsDatabase(cmd *cobra.Command) *cobra.Command {
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[needsDatabaseKey] = "true"
	return cmd
}

// checkDatabase refuses, for a command that reads an existing store, a --data-dir
// without the embedded database (a mistyped directory).
func (g *globals) checkDatabase(cmd *cobra.Command) error {
	if g.backend != "sqlite" || cmd.Annotations[needsDatabaseKey] != "true" {
		return nil
	}
	path := filepath.Join(g.dataDir, sqlite.FileName)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("--data-dir %s holds no agentwatch database (no %s; pass the directory that `agentwatch run` or `agentwatch ingest` used): %w",
				g.dataDir, sqlite.FileName, domain.ErrNotFound)
		}
		return fmt.Errorf("--data-dir %s: %w", g.dataDir, err)
	}
	return nil
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
