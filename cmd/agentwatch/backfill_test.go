package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/alerts"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/adapters/sfn/sfntest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// runCLI runs the command tree with args and returns what it printed on stdout.
func runCLI(ctx context.Context, args ...string) (string, error) {
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// fakeStepFunctions starts the HTTP-level fake of the Step Functions API with n
// executions of one tagged state machine, and points the SDK's standard configuration
// at it, as an operator points agentwatch at a local server.
func fakeStepFunctions(t *testing.T, n int) (*sfntest.Server, string) {
	fake := sfntest.New(t)
	smArn := sfntest.StateMachineArn("support-flow")
	fake.AddStateMachine(smArn, map[string]string{"agentName": "support-agent"})
	start := time.Date(2026, 2, 10, 8, 0, 0, 0, time.UTC)
	for i := range n {
		name := fmt.Sprintf("run-%02d", i)
		e := sfntest.Execution{Arn: sfntest.ExecutionArn("support-flow", name), StateMachineArn: smArn, Name: name,
			Status: "SUCCEEDED", StartDate: start.Add(time.Duration(i) * time.Minute), Input: fmt.Sprintf(`{"session_id":"s-%02d"}`, i),
			Output: `{"ok":true}`, RedriveStatus: "NOT_REDRIVABLE"}
		e.StopDate = e.StartDate.Add(42 * time.Second)
		if i%3 == 2 {
			e.Status, e.Output, e.Error, e.Cause, e.RedriveStatus = "FAILED", "", "States.TaskFailed", "boom", "REDRIVABLE"
		}
		fake.Put(e)
	}
	t.Setenv("AWS_ENDPOINT_URL_SFN", fake.URL)
	t.Setenv("AWS_REGION", sfntest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	return fake, smArn
}

// backendArgs are the global flags of a fresh store of backend: a temporary data dir,
// or migrated tables on DynamoDB Local under a fresh prefix.
func backendArgs(t *testing.T, backend string) []string {
	args := []string{"--backend", backend, "--data-dir", t.TempDir(), "--log-level", "error"}
	if backend == "aws" {
		ep := dynamotest.Endpoint(t)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ep)
		t.Setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", ep)
		args = append(args, "--table-prefix", dynamotest.TablePrefix(t, dynamotest.NewClient(t)))
		_, err := runCLI(t.Context(), append([]string{"migrate"}, args...)...)
		require.NoError(t, err)
	}
	return args
}

func TestBackfillCommandFromFakeAPI(t *testing.T) {
	for _, backend := range []string{"sqlite", "aws"} {
		t.Run(backend, func(t *testing.T) {
			const n = 12
			fake, smArn := fakeStepFunctions(t, n)
			args := backendArgs(t, backend)
			backfill := func(ctx context.Context, extra ...string) (app.BackfillReport, error) {
				out, err := runCLI(ctx, append(append([]string{"backfill", "--state-machine", smArn, "--rate", "1000/s", "--json"}, args...), extra...)...)
				var rep app.BackfillReport
				require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
				return rep, err
			}

			// Interrupted after 4 executions (newest first: run-11 to run-08).
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			fake.SetHook(func(op string, k int, _ map[string]any) *sfntest.Error {
				if op == sfntest.OpDescribeExecution && k == 5 {
					cancel()
					return &sfntest.Throttled // the call fails whichever the client sees first
				}
				return nil
			})
			rep, err := backfill(ctx)
			require.ErrorIs(t, err, context.Canceled)
			assert.Equal(t, 8, rep.Appended, "two status changes of each of the four done")
			assert.False(t, rep.Complete)
			fake.SetHook(nil)

			// Resumed: the rest only.
			fake.ResetCalls()
			rep, err = backfill(t.Context())
			require.NoError(t, err)
			assert.True(t, rep.Resumed)
			assert.Equal(t, 4, rep.Skipped)
			assert.Equal(t, n-4, rep.Described)
			assert.Equal(t, 2*(n-4), rep.Appended)
			assert.Zero(t, rep.Duplicates)

			// Again: duplicates only.
			rep, err = backfill(t.Context())
			require.NoError(t, err)
			assert.Zero(t, rep.Appended)
			assert.Equal(t, 2*n, rep.Duplicates)

			// The journal has each session's two status changes, agent from the tag.
			out, err := runCLI(t.Context(), append([]string{"sessions", "events", "s-02", "--json"}, args...)...)
			require.NoError(t, err)
			var got struct{ Items []domain.JournalItem }
			require.NoError(t, json.Unmarshal([]byte(out), &got))
			require.Len(t, got.Items, 2)
			assert.Equal(t, "EXECUTION_RUNNING", got.Items[0].Status)
			assert.Equal(t, "EXECUTION_FAILED", got.Items[1].Status)
			assert.Equal(t, "States.TaskFailed: boom", got.Items[1].ErrorMessage)
			assert.Equal(t, "support-agent", got.Items[1].AgentName)

			if backend == "sqlite" {
				// Embedded: projected before the command returned.
				out, err = runCLI(t.Context(), append([]string{"executions", "list", "--json", "--all", "--agent", "support-agent"}, args...)...)
				require.NoError(t, err)
				var page executionindex.Page
				require.NoError(t, json.Unmarshal([]byte(out), &page))
				assert.Len(t, page.Items, n)
			}
		})
	}
}

func TestBackfillCommandTextReportAndFlags(t *testing.T) {
	_, smArn := fakeStepFunctions(t, 3)
	args := backendArgs(t, "sqlite")
	out, err := runCLI(t.Context(), append([]string{"backfill", "--state-machine", smArn, "--rate", "500", "--dry-run"}, args...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "3 executions seen, 3 described (0 gone); 6 status changes: 0 appended, 0 duplicates, 0 rejected")
	assert.Contains(t, out, "dry run")

	out, err = runCLI(t.Context(), append([]string{"backfill", "--state-machine", smArn, "--status", "failed", "--since", "2026-02-10"}, args...)...)
	require.NoError(t, err)
	assert.Contains(t, out, "1 executions seen, 1 described (0 gone); 2 status changes: 2 appended, 0 duplicates")

	for _, bad := range [][]string{
		{"backfill"},
		{"backfill", "--state-machine", smArn, "--rate", "fast"},
		{"backfill", "--state-machine", smArn, "--rate", "0/s"},
		{"backfill", "--state-machine", smArn, "--status", "DONE"},
		{"backfill", "--state-machine", smArn, "--since", "yesterday-ish"},
	} {
		_, err := runCLI(t.Context(), append(bad, args...)...)
		assert.Error(t, err, bad)
	}
	_, err = runCLI(t.Context(), append([]string{"backfill", "--state-machine", sfntest.StateMachineArn("missing")}, args...)...)
	require.ErrorIs(t, err, domain.ErrNotFound, "exit code 3")
}

func TestReconcileFlagsAndModules(t *testing.T) {
	fs := pflag.NewFlagSet("run", pflag.ContinueOnError)
	o := registerReconcileFlags(fs)
	mods, err := reconcileModules(o)
	require.NoError(t, err)
	assert.Empty(t, mods, "off by default")

	require.NoError(t, fs.Parse([]string{"--reconcile-interval", "10m", "--reconcile-state-machines",
		sfntest.StateMachineArn("a") + "," + sfntest.StateMachineArn("b"), "--reconcile-window", "48h"}))
	assert.Equal(t, 10*time.Minute, o.interval)
	assert.Len(t, o.stateMachines, 2)
	mods, err = reconcileModules(o)
	require.NoError(t, err)
	assert.NotEmpty(t, mods)

	_, err = reconcileModules(&reconcileFlags{interval: time.Minute})
	require.ErrorContains(t, err, "--reconcile-state-machines")
	_, err = reconcileModules(&reconcileFlags{stateMachines: []string{"x"}})
	require.ErrorContains(t, err, "--reconcile-interval")

	t.Setenv("AGENTWATCH_RECONCILE_INTERVAL", "soon")
	_, err = reconcileModules(registerReconcileFlags(pflag.NewFlagSet("run", pflag.ContinueOnError)))
	require.ErrorContains(t, err, "AGENTWATCH_RECONCILE_INTERVAL")
}

// TestReconcileModulesRunInTheWorkerGraph starts the modules in the embedded worker's
// graph (as `run --reconcile-interval` will) against the fake API, and waits for a
// sweep to journal what the journal lacks.
func TestReconcileModulesRunInTheWorkerGraph(t *testing.T) {
	fake, smArn := fakeStepFunctions(t, 3)
	// Started within the window: the fake's executions are in February 2026.
	for i := range 3 {
		e := sfntest.Execution{Arn: sfntest.ExecutionArn("support-flow", fmt.Sprintf("recent-%d", i)), StateMachineArn: smArn,
			Name: fmt.Sprintf("recent-%d", i), Status: "RUNNING", StartDate: time.Now().Add(-time.Hour), Input: fmt.Sprintf(`{"session_id":"r-%d"}`, i)}
		fake.Put(e)
	}
	o := &reconcileFlags{interval: 50 * time.Millisecond, stateMachines: []string{smArn}, window: 2 * time.Hour, grace: time.Minute, rate: 1000}
	mods, err := reconcileModules(o)
	require.NoError(t, err)
	g := &globals{backend: "sqlite", dataDir: t.TempDir(), logLevel: "error"}
	backend, err := g.backendModules(true)
	require.NoError(t, err)
	var journal app.JournalReader
	var cfg app.Config
	cfg.SetDefaults()
	opts := append([]fx.Option{fx.Supply(cfg, g.logger()), fx.NopLogger, app.CoreModule, app.WorkerModule,
		fx.Populate(&journal)}, backend...)
	fxApp := fx.New(append(opts, mods...)...)
	require.NoError(t, fxApp.Err())
	require.NoError(t, fxApp.Start(t.Context()))
	defer func() { require.NoError(t, fxApp.Stop(context.Background())) }()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for i := range 3 {
			evs, err := journal.SessionEvents(t.Context(), fmt.Sprintf("r-%d", i), app.SessionEventsQuery{})
			if assert.NoError(c, err) && assert.Len(c, evs, 1) {
				assert.Equal(c, domain.Status("EXECUTION_RUNNING"), evs[0].Status)
			}
		}
	}, 10*time.Second, 20*time.Millisecond)
	for _, arn := range fake.Described() {
		assert.Contains(t, arn, ":recent-", "the February executions are outside the window")
	}
}

// TestReconcileAndBackfillGraphsValidate checks the fx graphs the modules join: the
// worker of `run` on each backend (aws already has a Step Functions client and the tag
// resolver, sqlite neither) and the backfill command's.
func TestReconcileAndBackfillGraphsValidate(t *testing.T) {
	cfg := app.Config{}
	cfg.SetDefaults()
	rec, err := reconcileModules(&reconcileFlags{interval: time.Minute, stateMachines: []string{sfntest.StateMachineArn("a")}})
	require.NoError(t, err)
	for _, backend := range []string{"sqlite", "aws"} {
		t.Run(backend, func(t *testing.T) {
			g := &globals{backend: backend, dataDir: t.TempDir(), awsFeeds: &awsFeedFlags{}}
			mods, err := g.backendModules(true)
			require.NoError(t, err)
			opts := append([]fx.Option{fx.Supply(cfg, g.logger(), httpapi.Config{Addr: "127.0.0.1:0"}, alerts.Config{}),
				app.CoreModule, app.WorkerModule, alerts.Module, httpapi.Module}, mods...)
			require.NoError(t, fx.ValidateApp(append(opts, rec...)...))

			for _, tags := range []bool{true, false} {
				o := &backfillOptions{cfg: app.BackfillConfig{StateMachineArn: sfntest.StateMachineArn("a")}, rate: "10", agentTags: tags}
				bf, err := o.modules()
				require.NoError(t, err)
				mods, err := g.backendModules(false)
				require.NoError(t, err)
				var b *app.Backfiller
				require.NoError(t, fx.ValidateApp(append(append([]fx.Option{fx.Supply(cfg, g.logger()), app.CoreModule, fx.Populate(&b)}, mods...), bf...)...))
			}
		})
	}
}
