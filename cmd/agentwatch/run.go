package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/alerts"
	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/app/simulate"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// runOptions are the worker's flags.
type runOptions struct {
	demo          bool
	demoRate      float64
	demoSeed      uint64
	httpAddr      string
	baseURL       string
	authTokenFile string
	authOps       bool
	interval      time.Duration
	grace         time.Duration
	timeouts      map[domain.Stage]*time.Duration
	webhookURL    string
	webhookSecret string
	snsTopicArn   string
	shutdown      time.Duration
	adaptive      stuck.Adaptive
	reconcile     *reconcileFlags
	consoleURL    string
	logLinks      []string
}

func newRunCommand(g *globals) *cobra.Command {
	o := &runOptions{timeouts: map[domain.Stage]*time.Duration{}}
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the worker: ingest, projection, stuck detector, HTTP API and History page",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.runWorker(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.demo, "demo", false, "feed simulated agent traffic (and use short stuck deadlines)")
	f.Float64Var(&o.demoRate, "demo-rate", 2, "demo sessions per second")
	f.Uint64Var(&o.demoSeed, "demo-seed", uint64(time.Now().UnixNano()), "demo traffic seed")
	f.StringVar(&o.httpAddr, "http", envOr("AGENTWATCH_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (env AGENTWATCH_HTTP_ADDR)")
	f.StringVar(&o.authTokenFile, "auth-token-file", envOr("AGENTWATCH_AUTH_TOKEN_FILE", ""),
		"file holding the bearer token every /v1 endpoint then requires (at least 16 visible ASCII characters; the History page asks for it once) (env AGENTWATCH_AUTH_TOKEN_FILE)")
	f.BoolVar(&o.authOps, "auth-ops-endpoints", false, "also require the token on /healthz, /readyz and /metrics")
	f.StringVar(&o.baseURL, "base-url", envOr("AGENTWATCH_BASE_URL", ""), "public URL of the History page, for links in alerts (env AGENTWATCH_BASE_URL)")
	f.DurationVar(&o.interval, "detector-interval", 5*time.Second, "how often the stuck detector evaluates")
	f.DurationVar(&o.grace, "completion-grace", 0, "how long after an execution ended the agent's completion may still arrive (default 2m; demo 15s)")
	for _, st := range domain.Stages {
		o.timeouts[st] = f.Duration("timeout-"+string(st), 0, fmt.Sprintf("deadline of the %s stage (0: default)", st))
	}
	f.StringVar(&o.webhookURL, "webhook-url", envOr("AGENTWATCH_WEBHOOK_URL", ""), "POST alerts as JSON to this URL (env AGENTWATCH_WEBHOOK_URL)")
	f.StringVar(&o.webhookSecret, "webhook-secret", envOr("AGENTWATCH_WEBHOOK_SECRET", ""), "sign webhook bodies with HMAC-SHA256 (env AGENTWATCH_WEBHOOK_SECRET)")
	f.StringVar(&o.snsTopicArn, "alert-topic-arn", envOr("AGENTWATCH_ALERT_TOPIC_ARN", ""), "publish alerts to this SNS topic (env AGENTWATCH_ALERT_TOPIC_ARN)")
	f.DurationVar(&o.shutdown, "shutdown-timeout", 30*time.Second, "how long a graceful shutdown may take")
	f.StringVar(&o.consoleURL, "console-url", "", "template of the History page's link to an execution in the Step Functions console (placeholders as --log-link; empty: the console of the ARN's region; none: no link)")
	f.StringArrayVar(&o.logLinks, "log-link", splitLogLinks(envOr("AGENTWATCH_LOG_LINKS", "")),
		"a link from each execution to its logs on the History page, LABEL=URL; the URL may hold {region}, {executionArn}, {sessionId}, {executionName}, {agentName}, {startMs}, {stopMs}; repeatable (the variable separates entries with |; env AGENTWATCH_LOG_LINKS)")
	g.awsFeeds = registerAWSFeedFlags(f)
	o.reconcile = registerReconcileFlags(f)
	f.BoolVar(&o.adaptive.Enabled, "adaptive", false, "derive per-agent stage deadlines from each agent's own p99 stage durations")
	f.Float64Var(&o.adaptive.Factor, "adaptive-factor", 3, "adaptive deadline = p99 x factor")
	f.DurationVar(&o.adaptive.Floor, "adaptive-floor", 30*time.Second, "adaptive deadlines are at least this")
	f.DurationVar(&o.adaptive.Ceiling, "adaptive-ceiling", 2*time.Hour, "adaptive deadlines are at most this")
	return cmd
}

func (g *globals) runWorker(ctx context.Context, o *runOptions) error {
	logger := g.logger()
	fxApp, server, err := g.workerApp(o, logger)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := fxApp.Start(startCtx); err != nil {
		return err
	}
	logger.Info("agentwatch running", "backend", g.backend, "dataDir", g.dataDir, "http", "http://"+server.Addr(), "demo", o.demo)
	<-ctx.Done()
	logger.Info("shutting down", "timeout", o.shutdown)
	stopCtx, cancelStop := context.WithTimeout(context.Background(), o.shutdown)
	defer cancelStop()
	return fxApp.Stop(stopCtx)
}

// workerApp builds the worker's fx app: the backend, the use cases, the router and
// detector, the alert sinks, the HTTP API, and the demo traffic when asked.
func (g *globals) workerApp(o *runOptions, logger *slog.Logger) (*fx.App, *httpapi.Server, error) {
	cfg := app.Config{}
	cfg.Detector.Interval = o.interval
	cfg.Detector.BaseURL = o.baseURL
	cfg.Detector.Stuck = stuck.DefaultConfig()
	if o.demo {
		cfg.Detector.Stuck.Timeouts = simulate.DemoTimeouts()
		cfg.Detector.Stuck.CompletionGrace = simulate.DemoCompletionGrace
		if o.interval == 5*time.Second {
			cfg.Detector.Interval = 2 * time.Second
		}
	}
	for st, d := range o.timeouts {
		if d != nil && *d > 0 {
			cfg.Detector.Stuck.Timeouts[st] = *d
		}
	}
	if o.grace > 0 {
		cfg.Detector.Stuck.CompletionGrace = o.grace
	}
	cfg.Detector.Stuck.Adaptive = o.adaptive
	if o.shutdown > 10*time.Second {
		// Leave the feeds time to write final checkpoints and release leases.
		cfg.Router.CloseTimeout = o.shutdown - 5*time.Second
	}
	cfg.SetDefaults()
	mods, err := g.backendModules(true)
	if err != nil {
		return nil, nil, err
	}
	httpCfg := httpapi.Config{Addr: o.httpAddr, BaseURL: o.baseURL, AuthOps: o.authOps, ConsoleURL: o.consoleURL}
	if o.authTokenFile != "" {
		if httpCfg.AuthToken, err = httpapi.ReadAuthToken(o.authTokenFile); err != nil {
			return nil, nil, fmt.Errorf("--auth-token-file: %w", err)
		}
	} else if o.authOps {
		return nil, nil, errors.New("--auth-ops-endpoints: requires --auth-token-file")
	}
	for _, l := range o.logLinks {
		link, err := httpapi.ParseLogLink(l)
		if err != nil {
			return nil, nil, fmt.Errorf("--log-link: %w", err)
		}
		httpCfg.LogLinks = append(httpCfg.LogLinks, link)
	}
	opts := []fx.Option{
		fx.Supply(cfg, logger, httpCfg, alerts.Config{Webhook: alerts.WebhookConfig{URL: o.webhookURL, Secret: o.webhookSecret}, SNSTopicArn: o.snsTopicArn}),
		fx.WithLogger(fxLogger(logger)),
		app.CoreModule,
	}
	opts = append(opts, mods...)
	opts = append(opts, app.WorkerModule, alerts.Module, httpapi.Module)
	if o.reconcile != nil {
		rec, err := reconcileModules(o.reconcile)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, rec...)
	}
	if o.demo {
		opts = append(opts, fx.Supply(app.DemoConfig{Live: simulate.LiveConfig{Seed: o.demoSeed, SessionsPerSecond: o.demoRate,
			DuplicateRate: 0.02, ReorderRate: 0.03, MalformedRate: 0.002}}), app.DemoModule)
	}
	var server *httpapi.Server
	opts = append(opts, fx.Provide(readyCheck), fx.Populate(&server))
	fxApp := fx.New(opts...)
	if err := fxApp.Err(); err != nil {
		return nil, nil, err
	}
	return fxApp, server, nil
}

// splitLogLinks reads AGENTWATCH_LOG_LINKS: LABEL=URL entries separated by '|' (which
// a URL holds only percent-encoded).
func splitLogLinks(v string) []string {
	var out []string
	for part := range strings.SplitSeq(v, "|") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// readyCheck is /readyz: ready while the router runs and the stores answer.
func readyCheck(r *message.Router, cps app.CheckpointStore, cfg app.Config) httpapi.ReadyCheck {
	return func(ctx context.Context) error {
		if !r.IsRunning() {
			return errors.New("router not running")
		}
		if _, err := cps.GetCheckpoint(ctx, cfg.CheckpointName); err != nil {
			return fmt.Errorf("store: %w", err)
		}
		return nil
	}
}
