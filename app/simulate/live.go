package simulate

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// LiveConfig configures Live. Fields left zero get defaults from SetDefaults, except the
// delivery-fault rates: zero means none.
type LiveConfig struct {
	// Seed selects the sessions (agents, scenarios, ids, durations); with a fake clock,
	// the same seed gives the same objects.
	Seed uint64
	// Agents is how many agents share the traffic. Default 5, or len(AgentNames).
	Agents int
	// AgentNames names the agents; default DefaultAgentNames.
	AgentNames []string
	// SessionsPerSecond is the mean rate of session arrivals (a Poisson process).
	// Default 2.
	SessionsPerSecond float64
	// MaxSessions stops arrivals after this many sessions; Live returns once their
	// objects are delivered. 0: no limit.
	MaxSessions int
	// Weights are the scenarios' relative frequencies. Default DemoWeights().
	Weights map[Scenario]float64
	// Timing shapes durations; zero fields take DemoTiming's, which suits a stuck
	// detector configured with DemoTimeouts and DemoCompletionGrace.
	Timing Timing
	// DuplicateRate, ReorderRate and MalformedRate are as in Config.
	DuplicateRate, ReorderRate, MalformedRate float64
	// Region and Account appear in ARNs and envelopes. Default DefaultRegion,
	// DefaultAccount.
	Region, Account string
	// Clock tells the time. Default time.Now.
	Clock func() time.Time
	// After returns a channel that delivers once d has passed on Clock. Default: a
	// timer. A test with a fake clock advances the clock by d and returns a ready
	// channel.
	After func(d time.Duration) <-chan time.Time
	// OnSession, if set, is told the truth of every session as it starts, before any of
	// its objects is delivered. It runs on Live's goroutine.
	OnSession func(SessionTruth)
}

// SetDefaults fills the fields left zero (see LiveConfig).
func (c *LiveConfig) SetDefaults() {
	if c.Agents == 0 {
		c.Agents = len(c.AgentNames)
		if c.Agents == 0 {
			c.Agents = 5
		}
	}
	if c.SessionsPerSecond == 0 {
		c.SessionsPerSecond = 2
	}
	if c.Weights == nil {
		c.Weights = DemoWeights()
	}
	c.Timing.fill(DemoTiming())
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Account == "" {
		c.Account = DefaultAccount
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

// Validate reports every problem of the configuration, joined.
func (c *LiveConfig) Validate() error {
	var errs []error
	errs = append(errs, validateAgents(c.Agents, c.AgentNames)...)
	if !(c.SessionsPerSecond > 0 && c.SessionsPerSecond <= 100_000) {
		errs = append(errs, fmt.Errorf("sessions per second: must be above 0 and at most 100000, found %v", c.SessionsPerSecond))
	}
	if c.MaxSessions < 0 {
		errs = append(errs, fmt.Errorf("max sessions: must not be negative, found %d", c.MaxSessions))
	}
	errs = append(errs, validateWeights(c.Weights)...)
	errs = append(errs, validateRates(c.DuplicateRate, c.ReorderRate, c.MalformedRate)...)
	errs = append(errs, c.Timing.validate()...)
	errs = append(errs, validateIdentity(c.Region, c.Account)...)
	if c.Clock == nil {
		errs = append(errs, errors.New("clock: must be set"))
	}
	return errors.Join(errs...)
}

// maxLag is how far behind the clock session arrivals may fall (a slow emit, a
// suspended laptop) before Live skips the missed arrivals instead of catching up.
const maxLag = 10 * time.Second

// Live simulates sessions continuously, starting them around cfg.Clock's time (after
// SetDefaults), and hands every object to emit when its delivery time (Object.At) comes,
// in delivery order, from the calling goroutine. A demo worker sees executions appear,
// complete, fail, and some stall so that a detector with DemoTimeouts raises alerts
// within a minute or two.
//
// Live returns ctx.Err() once ctx is done, the first error of emit (wrapped), or nil
// after the last object of MaxSessions sessions. An invalid cfg is an error.
func Live(ctx context.Context, cfg LiveConfig, emit func(Object) error) error {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("simulate: invalid live config: %w", err)
	}
	var pending objectHeap
	var seq uint64
	g := newSim(simConfig{
		seed: cfg.Seed, agents: cfg.Agents, agentNames: cfg.AgentNames, weights: cfg.Weights,
		timing: cfg.Timing, region: cfg.Region, account: cfg.Account,
		dupRate: cfg.DuplicateRate, reorderRate: cfg.ReorderRate, malformedRate: cfg.MalformedRate,
	}, nil, func(o Object) {
		heap.Push(&pending, queued{obj: o, seq: seq})
		seq++
	})

	after := cfg.After
	if after == nil {
		timer := time.NewTimer(time.Hour)
		timer.Stop()
		defer timer.Stop()
		after = func(d time.Duration) <-chan time.Time {
			timer.Reset(d)
			return timer.C
		}
	}

	arrivals := rand.New(rand.NewPCG(mix(cfg.Seed, 0xa441), mix(cfg.Seed, 0x7a1)))
	meanGap := float64(time.Second) / cfg.SessionsPerSecond
	nextArrival := func(from int64) int64 { return from + int64(arrivals.ExpFloat64()*meanGap) }
	next := nextArrival(cfg.Clock().UnixNano())
	started := 0
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		now := cfg.Clock().UnixNano()
		more := cfg.MaxSessions == 0 || started < cfg.MaxSessions
		if more && now-next > int64(maxLag) {
			next = now
		}
		for more && next <= now {
			t := g.session(uint64(started), next)
			started++
			if cfg.OnSession != nil {
				cfg.OnSession(t)
			}
			next = nextArrival(next)
			more = cfg.MaxSessions == 0 || started < cfg.MaxSessions
		}
		for pending.Len() > 0 && pending[0].at <= now {
			q := heap.Pop(&pending).(queued)
			if err := emit(q.obj); err != nil {
				return fmt.Errorf("simulate: emit: %w", err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if !more && pending.Len() == 0 {
			return nil
		}
		wake := int64(math.MaxInt64)
		if more {
			wake = next
		}
		if pending.Len() > 0 {
			wake = min(wake, pending[0].at)
		}
		if d := time.Duration(wake - now); d > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-after(d):
			}
		}
	}
}

// queued is an object waiting for its delivery time; seq keeps objects due at the same
// instant in the order they were made.
type queued struct {
	obj Object
	at  int64
	seq uint64
}

// objectHeap is a min-heap of queued objects by delivery time.
type objectHeap []queued

// Len implements heap.Interface.
func (h objectHeap) Len() int { return len(h) }

// Less implements heap.Interface: earlier delivery first, then the order of making.
func (h objectHeap) Less(i, j int) bool {
	if h[i].at != h[j].at {
		return h[i].at < h[j].at
	}
	return h[i].seq < h[j].seq
}

// Swap implements heap.Interface.
func (h objectHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *objectHeap) Push(x any) {
	q := x.(queued)
	q.at = q.obj.At.UnixNano()
	*h = append(*h, q)
}

// Pop implements heap.Interface.
func (h *objectHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = queued{}
	*h = old[:len(old)-1]
	return q
}
