package sfn

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/domain"
)

// stateMachine creates a state machine with tags on moto and returns its ARN.
func stateMachine(t *testing.T, client *sfn.Client, tags map[string]string) string {
	t.Helper()
	in := &sfn.CreateStateMachineInput{
		Name:       aws.String(mototest.Name(t, "sm")),
		Definition: aws.String(`{"StartAt":"Done","States":{"Done":{"Type":"Pass","End":true}}}`),
		RoleArn:    aws.String("arn:aws:iam::" + mototest.Account + ":role/agentwatch-test"),
	}
	for k, v := range tags {
		in.Tags = append(in.Tags, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	out, err := client.CreateStateMachine(t.Context(), in)
	require.NoError(t, err)
	arn := aws.ToString(out.StateMachineArn)
	t.Cleanup(func() {
		_, _ = client.DeleteStateMachine(context.Background(), &sfn.DeleteStateMachineInput{StateMachineArn: aws.String(arn)})
	})
	return arn
}

// faultyLister wraps the real client: it counts calls, can hold them until gate is
// closed, and can fail them (fault injection over the real API, not a mock of it).
type faultyLister struct {
	next  TagLister
	calls atomic.Int32
	gate  chan struct{} // nil: no wait
	fail  atomic.Pointer[error]
}

func (f *faultyLister) ListTagsForResource(ctx context.Context, in *sfn.ListTagsForResourceInput, optFns ...func(*sfn.Options)) (*sfn.ListTagsForResourceOutput, error) {
	f.calls.Add(1)
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if err := f.fail.Load(); err != nil {
		return nil, *err
	}
	return f.next.ListTagsForResource(ctx, in, optFns...)
}

func (f *faultyLister) setFail(err error) {
	if err == nil {
		f.fail.Store(nil)
		return
	}
	f.fail.Store(&err)
}

// fakeClock is a settable clock for cache expiry.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func newResolver(t *testing.T, cfg Config, client TagLister, logs *bytes.Buffer) (*TagResolver, *Metrics, *fakeClock) {
	t.Helper()
	m, err := NewMetrics(prometheus.NewRegistry())
	require.NoError(t, err)
	var logger *slog.Logger
	if logs != nil {
		logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	r, err := NewTagResolver(cfg, client, m, logger)
	require.NoError(t, err)
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r.now = clock.Now
	return r, m, clock
}

func TestTagResolverReadsTagsOnMoto(t *testing.T) {
	client := sfn.NewFromConfig(mototest.AWSConfig(t))
	tagged := stateMachine(t, client, map[string]string{"agentName": "research-agent", "team": "x"})
	pascal := stateMachine(t, client, map[string]string{"AgentName": "support-agent"})
	short := stateMachine(t, client, map[string]string{"agent": "billing-agent"})
	both := stateMachine(t, client, map[string]string{"agent": "loses", "AgentName": "wins"})
	blank := stateMachine(t, client, map[string]string{"agentName": "  ", "agent": "fallback-tag"})
	untagged := stateMachine(t, client, map[string]string{"team": "x"})
	custom := stateMachine(t, client, map[string]string{"agentName": "ignored", "x-agent": "custom-agent"})

	r, _, _ := newResolver(t, Config{}, client, nil)
	rc, _, _ := newResolver(t, Config{TagKeys: []string{"x-agent"}}, client, nil)
	tests := []struct {
		name     string
		resolver *TagResolver
		arn      string
		want     string
	}{
		{"agentName tag", r, tagged, "research-agent"},
		{"AgentName tag", r, pascal, "support-agent"},
		{"agent tag", r, short, "billing-agent"},
		{"first key in TagKeys order wins", r, both, "wins"},
		{"blank value is no value", r, blank, "fallback-tag"},
		{"no agent tag", r, untagged, ""},
		{"configured keys", rc, custom, "custom-agent"},
		// moto answers a version or alias ARN with no tags (AWS keeps tags on the state
		// machine only): resolved on the base ARN, the tags are found.
		{"version ARN resolved on its state machine", r, tagged + ":3", "research-agent"},
		{"alias ARN resolved on its state machine", r, pascal + ":prod", "support-agent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.resolver.ResolveAgentName(t.Context(), tt.arn)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestBaseStateMachineArn(t *testing.T) {
	const sm = "arn:aws:states:us-east-1:123456789012:stateMachine:agent-flow"
	for in, want := range map[string]string{
		sm:           sm,
		sm + ":1":    sm,
		sm + ":live": sm,
		"arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:f:2": "arn:aws-us-gov:states:us-gov-west-1:123456789012:stateMachine:f",
		"arn:aws:states:us-east-1:123456789012:execution:agent-flow:run-1":  "arn:aws:states:us-east-1:123456789012:execution:agent-flow:run-1",
		"not-an-arn": "not-an-arn",
		"":           "",
	} {
		assert.Equal(t, want, BaseStateMachineArn(in), in)
	}
}

func TestTagResolverSharesConcurrentLookupsAndCaches(t *testing.T) {
	client := sfn.NewFromConfig(mototest.AWSConfig(t))
	arn := stateMachine(t, client, map[string]string{"agentName": "research-agent"})
	untagged := stateMachine(t, client, nil)
	f := &faultyLister{next: client, gate: make(chan struct{})}
	r, m, clock := newResolver(t, Config{CacheTTL: time.Minute}, f, nil)

	const callers = 50
	var wg sync.WaitGroup
	names := make([]string, callers)
	errs := make([]error, callers)
	for i := range callers {
		wg.Go(func() {
			// Half of them ask for a version ARN: the same state machine.
			a := arn
			if i%2 == 1 {
				a += ":7"
			}
			names[i], errs[i] = r.ResolveAgentName(t.Context(), a)
		})
	}
	// Callers that arrive while the one call is held wait on it; later ones hit the cache.
	require.Eventually(t, func() bool { return f.calls.Load() > 0 }, 5*time.Second, time.Millisecond)
	close(f.gate)
	wg.Wait()
	for i := range callers {
		require.NoError(t, errs[i])
		assert.Equal(t, "research-agent", names[i])
	}
	assert.EqualValues(t, 1, f.calls.Load(), "concurrent lookups of one state machine share one call")

	// Cached, positive and negative, until CacheTTL.
	for range 3 {
		name, err := r.ResolveAgentName(t.Context(), arn)
		require.NoError(t, err)
		assert.Equal(t, "research-agent", name)
		name, err = r.ResolveAgentName(t.Context(), untagged)
		require.NoError(t, err)
		assert.Empty(t, name)
	}
	assert.EqualValues(t, 2, f.calls.Load(), "one call for the untagged state machine, then answers from the cache")
	clock.Add(time.Minute + time.Second)
	_, err := r.ResolveAgentName(t.Context(), arn)
	require.NoError(t, err)
	assert.EqualValues(t, 3, f.calls.Load(), "looked up again after CacheTTL")
	assert.Equal(t, 2.0, counterValue(t, m.Lookups.WithLabelValues(resultTagged)))
	assert.Equal(t, 1.0, counterValue(t, m.Lookups.WithLabelValues(resultUntagged)))
	assert.GreaterOrEqual(t, counterValue(t, m.CacheHits), 5.0)
}

func TestTagResolverFailureFallsBackCountsAndLogsOncePerStateMachine(t *testing.T) {
	client := sfn.NewFromConfig(mototest.AWSConfig(t))
	arn := stateMachine(t, client, map[string]string{"agentName": "research-agent"})
	other := stateMachine(t, client, map[string]string{"agentName": "support-agent"})
	f := &faultyLister{next: client}
	throttled := errors.New("ThrottlingException: Rate exceeded")
	f.setFail(throttled)
	var logs bytes.Buffer
	r, m, clock := newResolver(t, Config{FailureTTL: 30 * time.Second}, f, &logs)

	sc := domain.StatusChange{
		ExecutionArn:    "arn:aws:states:us-east-1:123456789012:execution:" + domain.StateMachineName(arn) + ":run-1",
		StateMachineArn: arn, Name: "run-1", Status: domain.ExecRunning,
		StartDate: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Input: []byte(`{"agent_name":"from-input"}`),
	}
	for range 3 { // three failing lookups, FailureTTL apart
		name, err := r.ResolveAgentName(t.Context(), arn)
		require.ErrorIs(t, err, throttled)
		assert.Empty(t, name)
		ev, err := domain.MapStatusChange(t.Context(), sc, r, domain.MappingConfig{})
		require.NoError(t, err, "a failed lookup is not fatal")
		assert.Equal(t, "from-input", ev.Exec.AgentName, "falls back to the input")
		clock.Add(31 * time.Second)
	}
	_, err := r.ResolveAgentName(t.Context(), other)
	require.Error(t, err)
	assert.Equal(t, 4.0, counterValue(t, m.Lookups.WithLabelValues(resultFailed)), "every failed call counted")
	assert.Equal(t, 2, strings.Count(logs.String(), "level=WARN"), "one warning per state machine, not per event:\n%s", logs.String())

	// Within FailureTTL the failure is answered from the cache: no call per event.
	calls := f.calls.Load()
	_, err = r.ResolveAgentName(t.Context(), other)
	require.Error(t, err)
	assert.Equal(t, calls, f.calls.Load())

	// Recovery is logged, and a later failure warns again.
	f.setFail(nil)
	clock.Add(31 * time.Second)
	name, err := r.ResolveAgentName(t.Context(), arn)
	require.NoError(t, err)
	assert.Equal(t, "research-agent", name)
	assert.Contains(t, logs.String(), "readable again")
	f.setFail(throttled)
	clock.Add(11 * time.Minute)
	_, err = r.ResolveAgentName(t.Context(), arn)
	require.Error(t, err)
	assert.Equal(t, 3, strings.Count(logs.String(), "level=WARN"))
}

func TestTagResolverNeverHoldsIngestLong(t *testing.T) {
	client := sfn.NewFromConfig(mototest.AWSConfig(t))
	arn := stateMachine(t, client, map[string]string{"agentName": "research-agent"})

	t.Run("a hung call ends at Timeout", func(t *testing.T) {
		f := &faultyLister{next: client, gate: make(chan struct{})} // never opened
		r, m, _ := newResolver(t, Config{Timeout: 100 * time.Millisecond}, f, nil)
		start := time.Now()
		name, err := r.ResolveAgentName(t.Context(), arn)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Empty(t, name)
		assert.Less(t, time.Since(start), 2*time.Second)
		assert.Equal(t, 1.0, counterValue(t, m.Lookups.WithLabelValues(resultFailed)))
	})
	t.Run("a caller that gives up does not cancel the others' lookup", func(t *testing.T) {
		f := &faultyLister{next: client, gate: make(chan struct{})}
		r, _, _ := newResolver(t, Config{}, f, nil)
		ctx, cancel := context.WithCancel(t.Context())
		first := make(chan error, 1)
		go func() { _, err := r.ResolveAgentName(ctx, arn); first <- err }()
		second := make(chan string, 1)
		go func() { name, _ := r.ResolveAgentName(t.Context(), arn); second <- name }()
		require.Eventually(t, func() bool { return f.calls.Load() > 0 }, 5*time.Second, time.Millisecond)
		cancel()
		require.ErrorIs(t, <-first, context.Canceled)
		close(f.gate)
		assert.Equal(t, "research-agent", <-second)
	})
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, DefaultTagKeys, c.TagKeys)
	assert.Equal(t, 10*time.Minute, c.CacheTTL)
	assert.Equal(t, 2*time.Second, c.Timeout)

	bad := Config{TagKeys: []string{"ok", " "}, CacheTTL: -1, FailureTTL: -1, Timeout: -1}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"TagKeys[1]", "CacheTTL", "FailureTTL", "Timeout"} {
		assert.Contains(t, err.Error(), want)
	}
}

// counterValue reads a counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
