package main

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/sfn"
	"github.com/agentwatch/agentwatch/adapters/sqs"
)

// awsFeedFlags are the flags of the AWS-mode status-change feed: the SQS queue that the
// EventBridge rule fills, and agent-name resolution from state-machine tags.
type awsFeedFlags struct {
	queueURL    string
	batchSize   int
	concurrency int
	visibility  time.Duration
	retryDelay  time.Duration
	tagKeys     []string
	tagTTL      time.Duration
	tagTimeout  time.Duration
}

// registerAWSFeedFlags adds the AWS-mode feed flags to f (the run command's) and
// returns where their values land, for awsFeedModules.
func registerAWSFeedFlags(f *pflag.FlagSet) *awsFeedFlags {
	o := &awsFeedFlags{}
	f.StringVar(&o.queueURL, "sfn-queue-url", envOr("AGENTWATCH_SFN_QUEUE_URL", ""),
		"URL of the SQS queue of Step Functions status changes in aws mode; without it status changes come only through POST /v1/events and ingest (env AGENTWATCH_SFN_QUEUE_URL)")
	f.IntVar(&o.batchSize, "sfn-queue-batch", sqs.MaxBatchSize, "messages per SQS receive, 1 to 10")
	f.IntVar(&o.concurrency, "sfn-queue-workers", 4, "SQS workers: each long-polls and handles one message at a time")
	f.DurationVar(&o.visibility, "sfn-queue-visibility-timeout", sqs.DefaultVisibilityTimeout,
		"visibility timeout of received messages, whole seconds; extended while a message is handled, so a dead worker's messages come back within it")
	f.DurationVar(&o.retryDelay, "sfn-queue-retry-delay", sqs.DefaultRetryDelay,
		"how long a status change that failed stays invisible before it is received again, whole seconds; the dead-letter queue takes it after about maxReceiveCount times this")
	f.StringSliceVar(&o.tagKeys, "agent-tag-keys", envList("AGENTWATCH_AGENT_TAG_KEYS", sfn.DefaultTagKeys),
		"state-machine tag keys holding the agent name, first match wins (env AGENTWATCH_AGENT_TAG_KEYS, comma-separated)")
	f.DurationVar(&o.tagTTL, "agent-tag-ttl", 10*time.Minute, "how long state-machine tags are cached")
	f.DurationVar(&o.tagTimeout, "agent-tag-timeout", 2*time.Second, "how long one tag lookup may hold up ingest")
	return o
}

// awsFeedModules are the fx modules of the AWS-mode status-change feed, for
// `run --backend aws` beside the DynamoDB store and stream modules: the SQS queue as the
// app.StatusChangeFeed (adapters/sqs.Module) and the tag resolver as the
// domain.AgentNameResolver (adapters/sfn.Module). Both use the SDK's standard
// configuration (AWS_REGION, AWS_ENDPOINT_URL_SQS / _SFN for local servers).
func awsFeedModules(o *awsFeedFlags) ([]fx.Option, error) {
	tc := sfn.Config{TagKeys: o.tagKeys, CacheTTL: o.tagTTL, Timeout: o.tagTimeout}
	tc.SetDefaults()
	if o.queueURL == "" {
		// No queue: the worker projects the journal's stream, and status changes come
		// through POST /v1/events or `agentwatch ingest` only.
		if err := tc.Validate(); err != nil {
			return nil, err
		}
		return []fx.Option{fx.Supply(tc), sfn.Module}, nil
	}
	qc := sqs.Config{QueueURL: o.queueURL, BatchSize: o.batchSize, Concurrency: o.concurrency, VisibilityTimeout: o.visibility,
		RetryDelay: o.retryDelay}
	qc.SetDefaults()
	if err := errors.Join(qc.Validate(), tc.Validate()); err != nil {
		return nil, err
	}
	return []fx.Option{fx.Supply(qc, tc), sqs.Module, sfn.Module}, nil
}

// envList reads a comma-separated list from the environment, or returns def.
func envList(key string, def []string) []string {
	v, ok := os.LookupEnv(key)
	if !ok || strings.TrimSpace(v) == "" {
		return append([]string(nil), def...)
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
