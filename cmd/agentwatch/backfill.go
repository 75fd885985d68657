package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// backfillOptions are the backfill command's flags.
type backfillOptions struct {
	cfg       app.BackfillConfig
	since     string
	status    string
	rate      string
	burst     int
	agentTags bool
	tagKeys   []string
}

func newBackfillCommand(g *globals) *cobra.Command {
	o := &backfillOptions{}
	cmd := &cobra.Command{
		Use:   "backfill --state-machine ARN",
		Short: "Journal the status changes of past executions from the Step Functions API (resumable, idempotent)",
		Long: "backfill lists a state machine's executions (ListExecutions, newest first), describes each\n" +
			"(DescribeExecution) and journals the status changes EventBridge sent for it — RUNNING at its\n" +
			"start, the latest redrive's RUNNING, its current status — as the same journal items, under the\n" +
			"same keys: a re-run, and EventBridge's own deliveries, are duplicates. Only the first start and\n" +
			"the latest attempt of a redriven execution can be reconstructed. Calls are rate-limited.\n\n" +
			"An interrupted run (Ctrl-C, an error) stores its position; the next run with the same filters\n" +
			"skips what was done without describing it again. In embedded mode the read models are brought\n" +
			"up to date before it returns. The SDK's standard configuration applies (AWS_REGION,\n" +
			"AWS_ENDPOINT_URL_SFN, ...). Needs states:ListExecutions, states:DescribeExecution and, for\n" +
			"agent names from tags, states:ListTagsForResource.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			mods, err := o.modules()
			if err != nil {
				return err
			}
			return g.runBackfill(cmd.Context(), o, mods)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.cfg.StateMachineArn, "state-machine", "", "ARN of the state machine whose executions are backfilled (required)")
	f.StringVar(&o.since, "since", "", "only executions started at or after (RFC 3339, YYYY-MM-DD, today, or a duration ago like 720h)")
	f.StringVar(&o.status, "status", "", "only executions now in this status: RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED, PENDING_REDRIVE")
	f.StringVar(&o.rate, "rate", "10/s", "Step Functions calls per second, N or N/s (ListExecutions and DescribeExecution together)")
	f.IntVar(&o.burst, "burst", 1, "calls that may go at once after a pause")
	f.BoolVar(&o.cfg.DryRun, "dry-run", false, "list, describe and map, but append nothing and store no position")
	f.BoolVar(&o.cfg.Restart, "restart", false, "ignore a stored position and start from the newest execution")
	f.BoolVar(&o.agentTags, "agent-tags", true, "agent names from state-machine tags, as the aws worker does (false: from the input or the state machine name, as the embedded worker does)")
	f.StringSliceVar(&o.tagKeys, "agent-tag-keys", envList("AGENTWATCH_AGENT_TAG_KEYS", sfn.DefaultTagKeys),
		"state-machine tag keys holding the agent name, first match wins (env AGENTWATCH_AGENT_TAG_KEYS, comma-separated)")
	f.BoolVar(&g.asJSON, "json", false, "print the report as JSON")
	_ = cmd.MarkFlagRequired("state-machine")
	return cmd
}

// modules checks the flags and returns the fx modules of the backfill: the Step
// Functions execution source, the tag resolver when asked, and the use case.
func (o *backfillOptions) modules() ([]fx.Option, error) {
	var err error
	if o.cfg.Since, err = parseTimeFlag("since", o.since, false); err != nil {
		return nil, err
	}
	o.cfg.Status = domain.ExecStatus(strings.ToUpper(o.status))
	rate, err := parseRate(o.rate)
	if err != nil {
		return nil, err
	}
	sc := sfn.SourceConfig{RequestsPerSecond: rate, Burst: o.burst}
	sc.SetDefaults()
	o.cfg.SetDefaults()
	if err := errors.Join(o.cfg.Validate(), sc.Validate()); err != nil {
		return nil, err
	}
	mods := []fx.Option{fx.Supply(sc), sfn.ExecutionSourceModule, app.BackfillModule}
	if o.agentTags {
		tc := sfn.Config{TagKeys: o.tagKeys}
		tc.SetDefaults()
		if err := tc.Validate(); err != nil {
			return nil, err
		}
		mods = append(mods, fx.Supply(tc), sfn.Module)
	}
	return mods, nil
}

// parseRate reads --rate: a positive number of calls per second, optionally "/s".
func parseRate(v string) (float64, error) {
	n, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), "/s"), 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("--rate: %q is not a positive number of calls per second (like 10 or 10/s)", v)
	}
	return n, nil
}

// runBackfill runs the backfill in an app of the selected backend plus mods, prints its
// report, and in embedded mode projects what it appended.
func (g *globals) runBackfill(ctx context.Context, o *backfillOptions, mods []fx.Option) error {
	var bf *app.Backfiller
	var local *app.LocalProjection
	return g.withApp(ctx, app.Config{}, append(mods, fx.Populate(&bf, &local)), func(ctx context.Context) error {
		rep, runErr := bf.Run(ctx, o.cfg)
		projected := 0
		if runErr == nil && !o.cfg.DryRun {
			var err error
			if projected, err = local.CatchUp(ctx); err != nil {
				return fmt.Errorf("project backfilled events: %w", err)
			}
		}
		if runErr != nil && missingCredentials(runErr) {
			runErr = fmt.Errorf("no AWS credentials for the Step Functions API: set AWS_PROFILE, or AWS_ACCESS_KEY_ID and "+
				"AWS_SECRET_ACCESS_KEY, or run where a role applies, then run the same command again: %w", runErr)
		}
		if g.asJSON {
			if err := printJSON(g.out, rep); err != nil {
				return errors.Join(runErr, err)
			}
			if runErr == nil {
				return rejected(rep.Rejected, rep.Events)
			}
			return runErr
		}
		state := "complete"
		switch {
		case runErr != nil && missingCredentials(runErr):
			state = "stopped: no AWS credentials (see the error)"
		case runErr != nil:
			state = "interrupted; run the same command again to resume"
		case o.cfg.DryRun:
			state = "dry run: nothing appended"
		}
		resumed := ""
		if rep.Resumed {
			resumed = fmt.Sprintf(" (resumed: %d done before)", rep.Skipped)
		}
		fmt.Fprintf(g.out, "%d executions seen%s, %d described (%d gone); %d status changes: %d appended, %d duplicates, %d rejected; %d journal events projected; %s\n",
			rep.Executions, resumed, rep.Described, rep.Gone, rep.Events, rep.Appended, rep.Duplicates, rep.Rejected, projected, state)
		if runErr == nil {
			return rejected(rep.Rejected, rep.Events)
		}
		return runErr
	})
}

// missingCredentials reports whether err is the SDK finding no credentials (it has no
// error type for it, only these words).
func missingCredentials(err error) bool {
	msg := err.Error()
	for _, s := range []string{"get credentials:", "failed to refresh cached credentials", "no valid providers in chain",
		"static credentials are empty", "no EC2 IMDS role found"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}
