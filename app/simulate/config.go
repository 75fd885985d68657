package simulate

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// AWS identity of the simulated executions.
const (
	// DefaultRegion is the region of every ARN and envelope unless configured.
	DefaultRegion = "us-east-1"
	// DefaultAccount is the account id of every ARN and envelope unless configured.
	DefaultAccount = "123456789012"
)

// DefaultStart is where a Config's window starts unless configured: a fixed instant (the
// day of seed 002's examples), so that default output does not depend on the clock.
var DefaultStart = time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)

// DefaultEvents is the number of objects Generate aims for when neither Events nor
// Sessions is set.
const DefaultEvents = 10_000

// DefaultAgentNames are the agents of a simulation, in order, unless Config.AgentNames
// says otherwise; agents past the list are named agent-13, agent-14, ...
var DefaultAgentNames = [...]string{
	"research-assistant", "support-triage", "code-reviewer", "invoice-extractor",
	"email-summarizer", "sales-outreach", "data-analyst", "compliance-checker",
	"travel-planner", "meeting-notes", "doc-translator", "incident-responder",
}

// maxAgents bounds Config.Agents: agent profiles are built up front.
const maxAgents = 10_000

// Config configures Generate. Fields left zero get defaults from SetDefaults, except the
// delivery-fault rates: zero means none (DefaultConfig sets realistic ones).
type Config struct {
	// Seed selects the traffic. The same Config gives byte-identical output; 0 is a seed
	// like any other.
	Seed uint64
	// Agents is how many agents (one state machine each) share the traffic. Default 5,
	// or len(AgentNames).
	Agents int
	// AgentNames names the agents; default DefaultAgentNames. Names are state machine
	// names in ARNs and JSON, made of letters, digits, '-' and '_'.
	AgentNames []string
	// Events is roughly how many objects to generate, duplicates and malformed objects
	// included: Generate adds sessions until it reaches Events, so it overshoots by less
	// than one session's objects. Set Events or Sessions, not both; default DefaultEvents.
	Events int
	// Sessions is exactly how many sessions to generate.
	Sessions int
	// Start is when the first session may start. Default DefaultStart.
	Start time.Time
	// Window is how long sessions keep arriving (a Poisson process whose rate spreads
	// the sessions over the window). Sessions run to their end, so objects are delivered
	// after Start+Window too. Default 1h.
	Window time.Duration
	// Weights are the relative frequencies of the scenarios; missing scenarios never
	// happen. Default DefaultWeights().
	Weights map[Scenario]float64
	// DuplicateRate is the probability that an object is delivered a second time,
	// byte-identical (EventBridge redeliveries keep the event id), RedeliveryDelay later.
	DuplicateRate float64
	// ReorderRate is the probability that an object is held back by ReorderDelay, so that
	// it arrives after objects of its session that happened later.
	ReorderRate float64
	// MalformedRate is the share of objects that are malformed by design, each a broken
	// copy of a valid object of a session (truncated JSON, startDate as a string, a
	// journal item without PK, a bad Timestamp, a numeric Status). They come on top of
	// the valid objects, so the ground truth is unaffected. Below 0.5.
	MalformedRate float64
	// Timing shapes durations; zero fields take DefaultTiming's.
	Timing Timing
	// Region and Account appear in ARNs and envelopes. Default DefaultRegion,
	// DefaultAccount.
	Region, Account string
}

// DefaultConfig is a Config with every default filled in and realistic delivery faults:
// 1% duplicates and 2% of objects delivered out of order.
func DefaultConfig() Config {
	c := Config{DuplicateRate: 0.01, ReorderRate: 0.02}
	c.SetDefaults()
	return c
}

// SetDefaults fills the fields left zero (see Config).
func (c *Config) SetDefaults() {
	if c.Agents == 0 {
		c.Agents = len(c.AgentNames)
		if c.Agents == 0 {
			c.Agents = 5
		}
	}
	if c.Events == 0 && c.Sessions == 0 {
		c.Events = DefaultEvents
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	if c.Window == 0 {
		c.Window = time.Hour
	}
	if c.Weights == nil {
		c.Weights = DefaultWeights()
	}
	c.Timing.fill(DefaultTiming())
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Account == "" {
		c.Account = DefaultAccount
	}
}

// Validate reports every problem of the configuration, joined.
func (c *Config) Validate() error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	errs = append(errs, validateAgents(c.Agents, c.AgentNames)...)
	if c.Events < 0 {
		add("events: must not be negative, found %d", c.Events)
	}
	if c.Sessions < 0 {
		add("sessions: must not be negative, found %d", c.Sessions)
	}
	if c.Events > 0 && c.Sessions > 0 {
		add("events and sessions: set one, not both")
	}
	if c.Events == 0 && c.Sessions == 0 {
		add("events or sessions: one must be set")
	}
	if y := c.Start.UTC().Year(); y < 1971 || y > 9000 {
		add("start: must be between 1971 and 9000, found %s", c.Start.Format(time.RFC3339))
	}
	if c.Window <= 0 {
		add("window: must be positive, found %s", c.Window)
	}
	errs = append(errs, validateWeights(c.Weights)...)
	errs = append(errs, validateRates(c.DuplicateRate, c.ReorderRate, c.MalformedRate)...)
	errs = append(errs, c.Timing.validate()...)
	errs = append(errs, validateIdentity(c.Region, c.Account)...)
	return errors.Join(errs...)
}

// validateAgents checks an agent count against the agent names.
func validateAgents(n int, names []string) []error {
	var errs []error
	switch {
	case n < 1 || n > maxAgents:
		errs = append(errs, fmt.Errorf("agents: must be between 1 and %d, found %d", maxAgents, n))
	case len(names) > 0 && n > len(names):
		errs = append(errs, fmt.Errorf("agents: %d agents but only %d agent names", n, len(names)))
	}
	for i, name := range names {
		if err := validAgentName(name); err != nil {
			errs = append(errs, fmt.Errorf("agent names[%d]: %w", i, err))
		}
	}
	return errs
}

// validAgentName checks that n can be a state machine name in an ARN and in JSON
// without escaping.
func validAgentName(n string) error {
	if n == "" {
		return errors.New("must not be empty")
	}
	if len(n) > 80 {
		return fmt.Errorf("must be at most 80 characters (a state machine name), found %d", len(n))
	}
	if strings.Trim(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
		return fmt.Errorf("%q: must hold only letters, digits, '-' and '_'", n)
	}
	return nil
}

// validateWeights checks scenario weights: known scenarios, finite non-negative
// weights, at least one positive.
func validateWeights(w map[Scenario]float64) []error {
	var errs []error
	total := 0.0
	for s, v := range w {
		if !s.Valid() {
			errs = append(errs, fmt.Errorf("weights: unknown scenario %q", s))
			continue
		}
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			errs = append(errs, fmt.Errorf("weights[%s]: must be a finite non-negative number, found %v", s, v))
			continue
		}
		total += v
	}
	if len(errs) == 0 && total <= 0 {
		errs = append(errs, errors.New("weights: at least one scenario must have a positive weight"))
	}
	return errs
}

// validateRates checks the delivery-fault rates.
func validateRates(dup, reorder, malformed float64) []error {
	var errs []error
	check := func(name string, v, max float64) {
		if !(v >= 0 && v <= max) {
			errs = append(errs, fmt.Errorf("%s: must be between 0 and %v, found %v", name, max, v))
		}
	}
	check("duplicate rate", dup, 1)
	check("reorder rate", reorder, 1)
	check("malformed rate", malformed, 0.49)
	return errs
}

// validateIdentity checks the region and account of the ARNs.
func validateIdentity(region, account string) []error {
	var errs []error
	if region == "" || strings.ContainsAny(region, ":\"\\ ") {
		errs = append(errs, fmt.Errorf("region: %q is not a region", region))
	}
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		errs = append(errs, fmt.Errorf("account: %q is not a 12-digit account id", account))
	}
	return errs
}

// DurationRange is a range of durations; draws are log-uniform between Min and Max, so
// that short and long values are equally likely in proportion.
type DurationRange struct {
	Min, Max time.Duration
}

// validate checks that r is a usable range; name names it in the error.
func (r DurationRange) validate(name string) error {
	if r.Min <= 0 || r.Max < r.Min {
		return fmt.Errorf("timing %s: need 0 < min <= max, found [%s, %s]", name, r.Min, r.Max)
	}
	return nil
}

// Timing shapes the durations of the simulation. Every agent scales stage gaps and
// draws its own median background-task duration, so agents differ.
type Timing struct {
	// Initiation is from the execution's start to SESSION_INITIATED.
	Initiation DurationRange
	// StageGap is the pause between consecutive agent events before the background
	// task (seed 002's examples: about 0.2-3 s).
	StageGap DurationRange
	// TaskMedian is the range of the agents' median background-task durations.
	TaskMedian DurationRange
	// TaskSigma is the log-normal sigma of background-task durations around the median.
	TaskSigma float64
	// TaskMax caps healthy background tasks; keep it below the stuck detector's
	// background-task timeout, or healthy sessions look stuck.
	TaskMax time.Duration
	// PollInterval is how often the state machine polls the journal for the agent's
	// terminal event: the execution stops up to PollInterval after it.
	PollInterval time.Duration
	// RetryBackoff is how long the invoker waits before retrying a failed invocation.
	RetryBackoff DurationRange
	// ExecutionTimeout is how long an execution waits for a silent agent before it
	// times out (missing completion, never started). Keep it below the background-task
	// timeout, or a detector raises stuck before missing_completion.
	ExecutionTimeout DurationRange
	// LateCompletion is from background task started to a late completion; above the
	// detector's background-task timeout, so that the session was stuck first.
	LateCompletion DurationRange
	// LongRunning is the duration of a long-running background task: far above the
	// agents' usual tasks, below the detector's background-task timeout.
	LongRunning DurationRange
	// RedriveAfter is from a failure to the operator's redrive.
	RedriveAfter DurationRange
	// AbortAfter is from background task started to the operator's abort; below the
	// detector's background-task timeout.
	AbortAfter DurationRange
	// DeliveryLatency is from an event to its delivery (EventBridge to SQS, or the
	// journal's stream).
	DeliveryLatency DurationRange
	// ReorderDelay is the extra delay of an object held back (Config.ReorderRate).
	ReorderDelay DurationRange
	// RedeliveryDelay is from a delivery to its duplicate (Config.DuplicateRate).
	RedeliveryDelay DurationRange
}

// DefaultTiming is production-like: background tasks of seconds to minutes, executions
// that give up on a silent agent after 5-15 minutes, late completions after 40-90
// minutes. It fits the stuck detector's default timeouts (30 minutes for background
// tasks, 2 minutes for the other stages).
func DefaultTiming() Timing {
	return Timing{
		Initiation:       DurationRange{20 * time.Millisecond, 400 * time.Millisecond},
		StageGap:         DurationRange{200 * time.Millisecond, 3 * time.Second},
		TaskMedian:       DurationRange{5 * time.Second, 3 * time.Minute},
		TaskSigma:        0.8,
		TaskMax:          20 * time.Minute,
		PollInterval:     10 * time.Second,
		RetryBackoff:     DurationRange{500 * time.Millisecond, 8 * time.Second},
		ExecutionTimeout: DurationRange{5 * time.Minute, 15 * time.Minute},
		LateCompletion:   DurationRange{40 * time.Minute, 90 * time.Minute},
		LongRunning:      DurationRange{10 * time.Minute, 25 * time.Minute},
		RedriveAfter:     DurationRange{time.Minute, 10 * time.Minute},
		AbortAfter:       DurationRange{time.Minute, 20 * time.Minute},
		DeliveryLatency:  DurationRange{50 * time.Millisecond, 2 * time.Second},
		ReorderDelay:     DurationRange{time.Second, 30 * time.Second},
		RedeliveryDelay:  DurationRange{100 * time.Millisecond, 30 * time.Second},
	}
}

// DemoTiming compresses DefaultTiming for the live demo, to go with DemoTimeouts and
// DemoCompletionGrace: background tasks of seconds, executions that give up after
// 30-50 s, late completions after 90-150 s, so that stuck, missing-completion and
// never-started alerts fire within a minute or two and recoveries follow.
func DemoTiming() Timing {
	return Timing{
		Initiation:       DurationRange{20 * time.Millisecond, 400 * time.Millisecond},
		StageGap:         DurationRange{200 * time.Millisecond, 3 * time.Second},
		TaskMedian:       DurationRange{3 * time.Second, 15 * time.Second},
		TaskSigma:        0.6,
		TaskMax:          45 * time.Second,
		PollInterval:     5 * time.Second,
		RetryBackoff:     DurationRange{500 * time.Millisecond, 3 * time.Second},
		ExecutionTimeout: DurationRange{30 * time.Second, 50 * time.Second},
		LateCompletion:   DurationRange{90 * time.Second, 150 * time.Second},
		LongRunning:      DurationRange{30 * time.Second, 55 * time.Second},
		RedriveAfter:     DurationRange{10 * time.Second, 30 * time.Second},
		AbortAfter:       DurationRange{10 * time.Second, 40 * time.Second},
		DeliveryLatency:  DurationRange{50 * time.Millisecond, time.Second},
		ReorderDelay:     DurationRange{500 * time.Millisecond, 5 * time.Second},
		RedeliveryDelay:  DurationRange{100 * time.Millisecond, 5 * time.Second},
	}
}

// DemoTimeouts are stuck-detector stage timeouts that go with DemoTiming.
func DemoTimeouts() map[domain.Stage]time.Duration {
	return map[domain.Stage]time.Duration{
		domain.StageInitiated:      30 * time.Second,
		domain.StageInvocation:     30 * time.Second,
		domain.StageEntrypoint:     30 * time.Second,
		domain.StageBackgroundTask: 60 * time.Second,
	}
}

// DemoCompletionGrace is the stuck detector's completion grace that goes with
// DemoTiming.
const DemoCompletionGrace = 15 * time.Second

// fill sets the zero fields of t from d.
func (t *Timing) fill(d Timing) {
	fillRange := func(r *DurationRange, def DurationRange) {
		if r.Min == 0 && r.Max == 0 {
			*r = def
		}
	}
	fillRange(&t.Initiation, d.Initiation)
	fillRange(&t.StageGap, d.StageGap)
	fillRange(&t.TaskMedian, d.TaskMedian)
	if t.TaskSigma == 0 {
		t.TaskSigma = d.TaskSigma
	}
	if t.TaskMax == 0 {
		t.TaskMax = d.TaskMax
	}
	if t.PollInterval == 0 {
		t.PollInterval = d.PollInterval
	}
	fillRange(&t.RetryBackoff, d.RetryBackoff)
	fillRange(&t.ExecutionTimeout, d.ExecutionTimeout)
	fillRange(&t.LateCompletion, d.LateCompletion)
	fillRange(&t.LongRunning, d.LongRunning)
	fillRange(&t.RedriveAfter, d.RedriveAfter)
	fillRange(&t.AbortAfter, d.AbortAfter)
	fillRange(&t.DeliveryLatency, d.DeliveryLatency)
	fillRange(&t.ReorderDelay, d.ReorderDelay)
	fillRange(&t.RedeliveryDelay, d.RedeliveryDelay)
}

// validate checks every field of t.
func (t *Timing) validate() []error {
	var errs []error
	for _, r := range []struct {
		name string
		r    DurationRange
	}{
		{"initiation", t.Initiation}, {"stage gap", t.StageGap}, {"task median", t.TaskMedian},
		{"retry backoff", t.RetryBackoff}, {"execution timeout", t.ExecutionTimeout},
		{"late completion", t.LateCompletion}, {"long running", t.LongRunning},
		{"redrive after", t.RedriveAfter}, {"abort after", t.AbortAfter},
		{"delivery latency", t.DeliveryLatency}, {"reorder delay", t.ReorderDelay},
		{"redelivery delay", t.RedeliveryDelay},
	} {
		if err := r.r.validate(r.name); err != nil {
			errs = append(errs, err)
		}
	}
	if !(t.TaskSigma >= 0 && t.TaskSigma <= 3) {
		errs = append(errs, fmt.Errorf("timing task sigma: must be between 0 and 3, found %v", t.TaskSigma))
	}
	if t.TaskMax <= 0 {
		errs = append(errs, fmt.Errorf("timing task max: must be positive, found %s", t.TaskMax))
	}
	if t.PollInterval <= 0 {
		errs = append(errs, fmt.Errorf("timing poll interval: must be positive, found %s", t.PollInterval))
	}
	return errs
}
