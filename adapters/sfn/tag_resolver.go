package sfn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/agentwatch/agentwatch/domain"
)

// TagLister is the part of the Step Functions API that TagResolver uses; *sfn.Client
// implements it.
type TagLister interface {
	ListTagsForResource(ctx context.Context, in *sfn.ListTagsForResourceInput, optFns ...func(*sfn.Options)) (*sfn.ListTagsForResourceOutput, error)
}

// TagResolver resolves agent names from state-machine tags with ListTagsForResource.
//
// Answers are cached per state machine: names and "no such tag" for Config.CacheTTL,
// failures for Config.FailureTTL. Concurrent lookups of one state machine share one
// call. A call is bounded by Config.Timeout and is not cancelled when the caller that
// started it gives up, so the callers waiting on it still get its answer. A failure is
// counted in Metrics and logged at WARN once per state machine until a lookup of it
// succeeds again; the caller gets "" and the error, and domain.MapStatusChange falls
// back to the execution input and the ARN.
//
// The cache holds one entry per state machine seen and is never pruned: state machines
// are few. TagResolver is safe for concurrent use.
type TagResolver struct {
	cfg     Config
	client  TagLister
	metrics *Metrics
	logger  *slog.Logger
	now     func() time.Time

	mu       sync.Mutex
	cache    map[string]answer
	inflight map[string]*lookup
	// warned holds the state machines whose current run of failures was logged.
	warned map[string]bool
}

var _ domain.AgentNameResolver = (*TagResolver)(nil)

// answer is a cached lookup result.
type answer struct {
	name    string
	err     error
	expires time.Time
}

// lookup is a ListTagsForResource call in flight; done is closed once res is set.
type lookup struct {
	done chan struct{}
	res  answer
}

// NewTagResolver returns a resolver that asks client. metrics may be nil.
func NewTagResolver(cfg Config, client TagLister, metrics *Metrics, logger *slog.Logger) (*TagResolver, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, errors.New("sfn: tag resolver needs a client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &TagResolver{
		cfg: cfg, client: client, metrics: metrics, logger: logger.With("component", "sfn-tag-resolver"), now: time.Now,
		cache: map[string]answer{}, inflight: map[string]*lookup{}, warned: map[string]bool{},
	}, nil
}

// ResolveAgentName returns the value of the first of Config.TagKeys that the state
// machine carries, or "" when it carries none. A version or alias ARN
// (…:stateMachine:NAME:1, …:stateMachine:NAME:prod) is looked up on its state machine,
// which holds the tags. It waits for a lookup at most until ctx is done or
// Config.Timeout passes; on failure it returns "" and the error.
func (r *TagResolver) ResolveAgentName(ctx context.Context, stateMachineArn string) (string, error) {
	arn := BaseStateMachineArn(stateMachineArn)
	if arn == "" {
		return "", nil
	}
	r.mu.Lock()
	if a, ok := r.cache[arn]; ok && r.now().Before(a.expires) {
		r.mu.Unlock()
		r.metrics.cacheHit()
		return a.name, a.err
	}
	l, ok := r.inflight[arn]
	if !ok {
		l = &lookup{done: make(chan struct{})}
		r.inflight[arn] = l
		// Detached from ctx: the other callers waiting on this lookup must not lose it
		// because the first one gave up. Config.Timeout bounds it.
		go r.run(context.WithoutCancel(ctx), arn, l)
	}
	r.mu.Unlock()
	select {
	case <-l.done:
		return l.res.name, l.res.err
	case <-ctx.Done():
		return "", fmt.Errorf("resolve agent name of %s: %w", arn, ctx.Err())
	}
}

// run performs one lookup, caches its answer and wakes the waiters.
func (r *TagResolver) run(ctx context.Context, arn string, l *lookup) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	name, result, err := r.list(ctx, arn)
	r.metrics.lookup(result)
	now := r.now()
	ttl := r.cfg.CacheTTL
	if err != nil {
		ttl = r.cfg.FailureTTL
	}
	r.mu.Lock()
	l.res = answer{name: name, err: err, expires: now.Add(ttl)}
	r.cache[arn] = l.res
	delete(r.inflight, arn)
	warn, recovered := err != nil && !r.warned[arn], err == nil && r.warned[arn]
	if warn {
		r.warned[arn] = true
	}
	if recovered {
		delete(r.warned, arn)
	}
	r.mu.Unlock()
	defer close(l.done) // after the log line, so that a waiter sees it written

	switch {
	case warn:
		r.logger.WarnContext(ctx, "cannot read state machine tags; agent names fall back to the execution input or the state machine name until a lookup succeeds",
			"stateMachineArn", arn, "retryAfter", r.cfg.FailureTTL, "error", err)
	case err != nil:
		r.logger.DebugContext(ctx, "state machine tags still unreadable", "stateMachineArn", arn, "error", err)
	case recovered:
		r.logger.InfoContext(ctx, "state machine tags readable again", "stateMachineArn", arn, "agentName", name)
	}
}

// Lookup results, the label values of Metrics.Lookups.
const (
	resultTagged   = "tagged"
	resultUntagged = "untagged"
	resultNotFound = "not_found"
	resultFailed   = "failed"
)

// list calls ListTagsForResource and picks the agent name. A state machine that no
// longer exists (late events of a deleted one) has no tags: an answer, not a failure.
func (r *TagResolver) list(ctx context.Context, arn string) (name, result string, err error) {
	out, err := r.client.ListTagsForResource(ctx, &sfn.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
	if err != nil {
		var nf *types.ResourceNotFound
		if errors.As(err, &nf) {
			return "", resultNotFound, nil
		}
		return "", resultFailed, fmt.Errorf("list tags of state machine %s: %w", arn, err)
	}
	tags := make(map[string]string, len(out.Tags))
	for _, t := range out.Tags {
		tags[aws.ToString(t.Key)] = strings.TrimSpace(aws.ToString(t.Value))
	}
	for _, k := range r.cfg.TagKeys {
		if v := tags[k]; v != "" {
			return v, resultTagged, nil
		}
	}
	return "", resultUntagged, nil
}

// BaseStateMachineArn returns the ARN of the state machine that a state machine ARN
// names: a version (…:stateMachine:NAME:3) or alias (…:stateMachine:NAME:prod) ARN
// without its qualifier. Other strings are returned unchanged.
func BaseStateMachineArn(arn string) string {
	parts := strings.SplitN(arn, ":", 8)
	if len(parts) == 8 && parts[0] == "arn" && parts[2] == "states" && parts[5] == "stateMachine" {
		return strings.Join(parts[:7], ":")
	}
	return arn
}
