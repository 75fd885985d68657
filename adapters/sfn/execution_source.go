package sfn

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	"github.com/aws/aws-sdk-go-v2/service/sfn/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// ExecutionAPI is the part of the Step Functions API that ExecutionSource uses;
// *sfn.Client implements it.
type ExecutionAPI interface {
	ListExecutions(ctx context.Context, in *sfn.ListExecutionsInput, optFns ...func(*sfn.Options)) (*sfn.ListExecutionsOutput, error)
	DescribeExecution(ctx context.Context, in *sfn.DescribeExecutionInput, optFns ...func(*sfn.Options)) (*sfn.DescribeExecutionOutput, error)
}

// SourceConfig configures an ExecutionSource.
type SourceConfig struct {
	// RequestsPerSecond caps the rate of ListExecutions and DescribeExecution calls
	// together, retries not counted, so that a backfill leaves room in the account's
	// Step Functions quotas (shared with the agents' own calls) for everyone else.
	// Default 10.
	RequestsPerSecond float64
	// Burst is how many calls may go out at once after a pause. Default 1: evenly
	// spaced.
	Burst int
	// PageSize is ListExecutions' maxResults, 1 to 1000. Default 1000: fewer calls.
	PageSize int
	// MaxAttempts is how many times the SDK tries one call (throttling and transient
	// errors are retried with backoff). Default 8: a long backfill rides out throttling
	// rather than stopping.
	MaxAttempts int
}

// SetDefaults fills the fields left zero.
func (c *SourceConfig) SetDefaults() {
	if c.RequestsPerSecond == 0 {
		c.RequestsPerSecond = 10
	}
	if c.Burst == 0 {
		c.Burst = 1
	}
	if c.PageSize == 0 {
		c.PageSize = 1000
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 8
	}
}

// Validate reports every invalid field.
func (c *SourceConfig) Validate() error {
	var errs []error
	if c.RequestsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("sfn: RequestsPerSecond must be positive, is %g", c.RequestsPerSecond))
	}
	if c.Burst < 1 {
		errs = append(errs, fmt.Errorf("sfn: Burst must be at least 1, is %d", c.Burst))
	}
	if c.PageSize < 1 || c.PageSize > 1000 {
		errs = append(errs, fmt.Errorf("sfn: PageSize must be between 1 and 1000, is %d", c.PageSize))
	}
	if c.MaxAttempts < 1 {
		errs = append(errs, fmt.Errorf("sfn: MaxAttempts must be at least 1, is %d", c.MaxAttempts))
	}
	return errors.Join(errs...)
}

// ExecutionSource is the app.ExecutionSource of the Step Functions API: ListExecutions
// (paginated) and DescribeExecution, paced by one rate limiter shared by all callers.
//
// AWS permissions: states:ListExecutions on the state machines, states:DescribeExecution
// on their executions.
type ExecutionSource struct {
	cfg     SourceConfig
	api     ExecutionAPI
	limiter *Limiter
	metrics *SourceMetrics
	logger  *slog.Logger
}

var _ app.ExecutionSource = (*ExecutionSource)(nil)

// NewExecutionSource returns a source over api. metrics may be nil.
func NewExecutionSource(cfg SourceConfig, api ExecutionAPI, metrics *SourceMetrics, logger *slog.Logger) (*ExecutionSource, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if api == nil {
		return nil, errors.New("sfn: execution source needs a client")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &ExecutionSource{cfg: cfg, api: api, limiter: NewLimiter(cfg.RequestsPerSecond, cfg.Burst),
		metrics: metrics, logger: logger.With("component", "sfn-executions")}, nil
}

// Limiter returns the limiter that paces the source's calls.
func (s *ExecutionSource) Limiter() *Limiter { return s.limiter }

// Operation names, the label values of SourceMetrics.Calls.
const (
	opListExecutions    = "ListExecutions"
	opDescribeExecution = "DescribeExecution"
)

// ListExecutions implements app.ExecutionSource.
func (s *ExecutionSource) ListExecutions(ctx context.Context, q app.ExecutionListQuery, fn func(page []app.ExecutionSummary) error) error {
	in := &sfn.ListExecutionsInput{StateMachineArn: aws.String(q.StateMachineArn)}
	if q.Status != "" {
		in.StatusFilter = types.ExecutionStatus(q.Status)
	}
	p := sfn.NewListExecutionsPaginator(s.api, in, func(o *sfn.ListExecutionsPaginatorOptions) {
		o.Limit = int32(s.cfg.PageSize)
	})
	for p.HasMorePages() {
		if err := s.wait(ctx); err != nil {
			return err
		}
		out, err := p.NextPage(ctx, s.callOptions)
		s.metrics.call(opListExecutions, err)
		if err != nil {
			return fmt.Errorf("list executions of %s: %w", q.StateMachineArn, translate(err))
		}
		page := make([]app.ExecutionSummary, 0, len(out.Executions))
		done := false
		for _, e := range out.Executions {
			sum := summaryOf(&e)
			if !q.Since.IsZero() && sum.StartDate.Before(q.Since) {
				// Newest first: every later one started before Since too.
				done = true
				break
			}
			page = append(page, sum)
		}
		if len(page) > 0 {
			if err := fn(page); err != nil {
				return fmt.Errorf("list executions of %s: %w", q.StateMachineArn, err)
			}
		}
		if done {
			return nil
		}
	}
	return nil
}

// DescribeExecution implements app.ExecutionSource.
func (s *ExecutionSource) DescribeExecution(ctx context.Context, executionArn string) (domain.StatusChange, error) {
	if err := s.wait(ctx); err != nil {
		return domain.StatusChange{}, err
	}
	out, err := s.api.DescribeExecution(ctx, &sfn.DescribeExecutionInput{ExecutionArn: aws.String(executionArn)}, s.callOptions)
	s.metrics.call(opDescribeExecution, err)
	if err != nil {
		return domain.StatusChange{}, fmt.Errorf("describe execution %s: %w", executionArn, translate(err))
	}
	return statusChangeOf(out), nil
}

// callOptions are the per-call client options: more attempts than the SDK's default.
func (s *ExecutionSource) callOptions(o *sfn.Options) {
	o.RetryMaxAttempts = s.cfg.MaxAttempts
}

// wait holds a call until the limiter lets it go, and records the time waited.
func (s *ExecutionSource) wait(ctx context.Context) error {
	waited, err := s.limiter.Wait(ctx)
	s.metrics.waited(waited)
	if err != nil {
		return fmt.Errorf("wait for the Step Functions rate limit: %w", err)
	}
	return nil
}

// translate maps the API's not-found errors to domain.ErrNotFound, keeping the
// original in the chain.
func translate(err error) error {
	var (
		noSM   *types.StateMachineDoesNotExist
		noExec *types.ExecutionDoesNotExist
	)
	if errors.As(err, &noSM) || errors.As(err, &noExec) {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	return err
}

// summaryOf converts a ListExecutions item.
func summaryOf(e *types.ExecutionListItem) app.ExecutionSummary {
	return app.ExecutionSummary{
		ExecutionArn:    aws.ToString(e.ExecutionArn),
		StateMachineArn: aws.ToString(e.StateMachineArn),
		Name:            aws.ToString(e.Name),
		Status:          domain.ExecStatus(e.Status),
		StartDate:       utc(e.StartDate),
		StopDate:        utc(e.StopDate),
		RedriveDate:     utc(e.RedriveDate),
		RedriveCount:    int(aws.ToInt32(e.RedriveCount)),
	}
}

// statusChangeOf converts a DescribeExecution answer to the status change that an
// EventBridge event of the execution's current status carries.
func statusChangeOf(out *sfn.DescribeExecutionOutput) domain.StatusChange {
	arn := aws.ToString(out.ExecutionArn)
	sc := domain.StatusChange{
		Version:                "0",
		DetailType:             domain.StatusChangeDetailType,
		Source:                 domain.StatusChangeSource,
		Resources:              []string{arn},
		ExecutionArn:           arn,
		StateMachineArn:        aws.ToString(out.StateMachineArn),
		Name:                   aws.ToString(out.Name),
		Status:                 domain.ExecStatus(out.Status),
		StartDate:              utc(out.StartDate),
		StopDate:               utc(out.StopDate),
		RedriveDate:            utc(out.RedriveDate),
		Input:                  domain.PayloadText(aws.ToString(out.Input)),
		Output:                 domain.PayloadText(aws.ToString(out.Output)),
		Error:                  aws.ToString(out.Error),
		Cause:                  aws.ToString(out.Cause),
		RedriveCount:           int(aws.ToInt32(out.RedriveCount)),
		RedriveStatus:          string(out.RedriveStatus),
		RedriveStatusReason:    aws.ToString(out.RedriveStatusReason),
		StateMachineVersionArn: aws.ToString(out.StateMachineVersionArn),
		StateMachineAliasArn:   aws.ToString(out.StateMachineAliasArn),
	}
	if out.InputDetails != nil {
		sc.InputIncluded = aws.Bool(out.InputDetails.Included)
	}
	if out.OutputDetails != nil {
		sc.OutputIncluded = aws.Bool(out.OutputDetails.Included)
	}
	return sc
}

// utc is t in UTC, or the zero time for nil.
func utc(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
