package dynamodb

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// DefaultMaxAttempts is how many times the client tries a request (throttling and
// transient errors are retried with the standard retryer's jittered exponential
// backoff) unless AWS_MAX_ATTEMPTS or the shared config says otherwise.
const DefaultMaxAttempts = 10

// NewClient returns a DynamoDB client configured by the SDK's standard chain only:
// AWS_REGION, the credential chain, and AWS_ENDPOINT_URL_DYNAMODB (or AWS_ENDPOINT_URL)
// for a local server such as DynamoDB Local. Requests are retried by the SDK's standard
// retryer, DefaultMaxAttempts times, without its client-side retry quota: a worker that
// is throttled must slow down, not fail. optFns adjust the client (e.g.
// WithRequestCounter).
//
// For endpoints outside amazonaws.com the client does not validate response checksums:
// DynamoDB Local sends none on errors, and the SDK would log a warning for each.
func NewClient(ctx context.Context, optFns ...func(*dynamodb.Options)) (*dynamodb.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRetryer(func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = DefaultMaxAttempts
			o.RateLimiter = ratelimit.None
		})
	}))
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	opts := append(append([]func(*dynamodb.Options){}, optFns...), localEndpointOptions)
	return dynamodb.NewFromConfig(cfg, opts...), nil
}

// localEndpointOptions turns off response checksum validation for endpoints that are
// not AWS's own.
func localEndpointOptions(o *dynamodb.Options) {
	if IsLocalEndpoint(aws.ToString(o.BaseEndpoint)) {
		o.DisableValidateResponseChecksum = true
	}
}

// IsLocalEndpoint reports whether endpoint is set and is not an amazonaws.com host:
// DynamoDB Local or another stand-in.
func IsLocalEndpoint(endpoint string) bool {
	if endpoint == "" {
		return false
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return true
	}
	host := u.Hostname()
	return !strings.HasSuffix(host, ".amazonaws.com") && !strings.HasSuffix(host, ".amazonaws.com.cn")
}

// writeOperations are the DynamoDB operations that write.
var writeOperations = map[string]bool{
	"PutItem": true, "UpdateItem": true, "DeleteItem": true, "BatchWriteItem": true, "TransactWriteItems": true,
}

// RequestCounter counts a client's DynamoDB requests: calls per operation, the calls
// that write, and HTTP attempts (retries included). Install it with WithRequestCounter.
// It is safe for concurrent use.
type RequestCounter struct {
	mu       sync.Mutex
	calls    map[string]int64
	items    int64
	attempts atomic.Int64
}

// NewRequestCounter returns a counter at zero.
func NewRequestCounter() *RequestCounter { return &RequestCounter{calls: map[string]int64{}} }

// RequestCounts is a snapshot of a RequestCounter.
type RequestCounts struct {
	// Calls counts operation calls by operation name ("PutItem", "Query", ...).
	Calls map[string]int64 `json:"calls"`
	// Total is the number of operation calls.
	Total int64 `json:"total"`
	// Writes is the number of calls of writing operations (PutItem, UpdateItem,
	// DeleteItem, BatchWriteItem, TransactWriteItems).
	Writes int64 `json:"writes"`
	// WrittenItems is the number of items the writing calls wrote (or asked to write):
	// one per PutItem, UpdateItem or DeleteItem, every request of a BatchWriteItem,
	// every Put, Update or Delete of a TransactWriteItems (a ConditionCheck writes
	// nothing). What DynamoDB bills write units for, transactions at two per item.
	WrittenItems int64 `json:"writtenItems"`
	// Attempts is the number of HTTP requests sent, retries included.
	Attempts int64 `json:"attempts"`
}

// Snapshot returns the counts so far.
func (c *RequestCounter) Snapshot() RequestCounts {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := RequestCounts{Calls: maps.Clone(c.calls), Attempts: c.attempts.Load(), WrittenItems: c.items}
	for op, n := range c.calls {
		s.Total += n
		if writeOperations[op] {
			s.Writes += n
		}
	}
	return s
}

// Sub returns the counts between an earlier snapshot and s.
func (s RequestCounts) Sub(earlier RequestCounts) RequestCounts {
	d := RequestCounts{Calls: map[string]int64{}, Total: s.Total - earlier.Total, Writes: s.Writes - earlier.Writes,
		WrittenItems: s.WrittenItems - earlier.WrittenItems, Attempts: s.Attempts - earlier.Attempts}
	for op, n := range s.Calls {
		if v := n - earlier.Calls[op]; v != 0 {
			d.Calls[op] = v
		}
	}
	return d
}

// AddToStack registers the counting middlewares on a client's middleware stack: one in
// the initialize step (once per call) and one after the retry middleware in the
// finalize step (once per attempt).
func (c *RequestCounter) AddToStack(stack *middleware.Stack) error {
	err := stack.Initialize.Add(middleware.InitializeMiddlewareFunc("agentwatchCountCalls",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			op := middleware.GetOperationName(ctx)
			n := writtenItems(in.Parameters)
			c.mu.Lock()
			c.calls[op]++
			c.items += n
			c.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	if err != nil {
		return fmt.Errorf("add call counter: %w", err)
	}
	err = stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("agentwatchCountAttempts",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			c.attempts.Add(1)
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
	if err != nil {
		return fmt.Errorf("add attempt counter: %w", err)
	}
	return nil
}

// WithRequestCounter is a client option that counts the client's requests in c.
func WithRequestCounter(c *RequestCounter) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, c.AddToStack) }
}

// writtenItems counts the items a call's input writes.
func writtenItems(params any) int64 {
	switch in := params.(type) {
	case *dynamodb.PutItemInput, *dynamodb.UpdateItemInput, *dynamodb.DeleteItemInput:
		return 1
	case *dynamodb.BatchWriteItemInput:
		var n int64
		for _, reqs := range in.RequestItems {
			n += int64(len(reqs))
		}
		return n
	case *dynamodb.TransactWriteItemsInput:
		var n int64
		for _, it := range in.TransactItems {
			if it.Put != nil || it.Update != nil || it.Delete != nil {
				n++
			}
		}
		return n
	}
	return 0
}
