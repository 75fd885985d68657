package main

import (
	"errors"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/app"
)

// reconcileFlags are the flags of the worker's reconcile sweep (app.Reconciler), off by
// default.
type reconcileFlags struct {
	interval      time.Duration
	stateMachines []string
	window        time.Duration
	grace         time.Duration
	openLookback  time.Duration
	rate          float64
	// badInterval is AGENTWATCH_RECONCILE_INTERVAL when it is not a duration.
	badInterval string
}

// registerReconcileFlags adds the reconcile sweep's flags to f (the run command's) and
// returns where their values land, for reconcileModules.
func registerReconcileFlags(f *pflag.FlagSet) *reconcileFlags {
	o := &reconcileFlags{}
	raw := envOr("AGENTWATCH_RECONCILE_INTERVAL", "0s")
	interval, err := time.ParseDuration(raw)
	if err != nil {
		interval = -1 // reported by reconcileModules, with the variable's name
		o.badInterval = raw
	}
	f.DurationVar(&o.interval, "reconcile-interval", interval,
		"sweep the Step Functions API this often for status changes EventBridge dropped, and journal them; 0: off (env AGENTWATCH_RECONCILE_INTERVAL)")
	f.StringSliceVar(&o.stateMachines, "reconcile-state-machines", envList("AGENTWATCH_RECONCILE_STATE_MACHINES", nil),
		"ARNs of the state machines the sweep covers (env AGENTWATCH_RECONCILE_STATE_MACHINES, comma-separated)")
	f.DurationVar(&o.window, "reconcile-window", 24*time.Hour, "a sweep looks at the executions started this far back")
	f.DurationVar(&o.grace, "reconcile-grace", 2*time.Minute, "executions whose status changed this recently are left to EventBridge until the next sweep")
	f.DurationVar(&o.openLookback, "reconcile-open-lookback", 7*24*time.Hour,
		"a sweep also describes the executions started this far before the window that the index still shows RUNNING (their end may have been dropped); negative: off")
	f.Float64Var(&o.rate, "reconcile-rate", 5, "Step Functions calls per second of the sweep")
	return o
}

// reconcileModules are the fx modules of the reconcile sweep for the worker's graph,
// or none when it is off (no interval and no state machines). It adds the Step
// Functions execution source (adapters/sfn.ExecutionSourceModule, which uses the
// graph's Step Functions client in aws mode and makes one otherwise) and
// app.ReconcileModule; agent names come from the graph's resolver, as for the
// EventBridge feed. In aws mode, with several tasks, each sweeps but skips a state
// machine swept by another within half an interval.
func reconcileModules(o *reconcileFlags) ([]fx.Option, error) {
	if o == nil || (o.interval == 0 && len(o.stateMachines) == 0) {
		return nil, nil
	}
	if o.interval < 0 {
		if o.badInterval != "" {
			return nil, errors.New("AGENTWATCH_RECONCILE_INTERVAL: " + o.badInterval + " is not a duration (like 15m)")
		}
	}
	var errs []error
	if o.interval == 0 {
		errs = append(errs, errors.New("--reconcile-state-machines needs --reconcile-interval (like 15m)"))
	}
	if o.interval != 0 && len(o.stateMachines) == 0 {
		errs = append(errs, errors.New("--reconcile-interval needs --reconcile-state-machines"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	rc := app.ReconcileConfig{StateMachineArns: o.stateMachines, Interval: o.interval, Window: o.window, Grace: o.grace,
		OpenLookback: o.openLookback}
	rc.SetDefaults()
	sc := sfn.SourceConfig{RequestsPerSecond: o.rate}
	sc.SetDefaults()
	if err := errors.Join(rc.Validate(), sc.Validate()); err != nil {
		return nil, err
	}
	return []fx.Option{fx.Supply(rc, sc), sfn.ExecutionSourceModule, app.ReconcileModule}, nil
}
