package sqs

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// Limits of the SQS API.
const (
	// MaxBatchSize is the most messages one ReceiveMessage returns.
	MaxBatchSize = 10
	// MaxWaitTime is the longest long-polling wait of one ReceiveMessage.
	MaxWaitTime = 20 * time.Second
	// MaxVisibilityTimeout is the longest visibility timeout SQS takes.
	MaxVisibilityTimeout = 12 * time.Hour
)

// Defaults of Config.
const (
	// DefaultVisibilityTimeout is the visibility timeout of received messages: short,
	// because it is extended while a message waits or is handled, so that the messages
	// of a worker that dies come back within it.
	DefaultVisibilityTimeout = 10 * time.Second
	// MinVisibilityTimeout is the shortest visibility timeout Config takes (the
	// heartbeat extends it every third of it; a timeout this short leaves a slow
	// extension call little room, and is meant for tests).
	MinVisibilityTimeout = time.Second
	// DefaultMaxExtension is how long a message is kept invisible at most by
	// extensions after its receive.
	DefaultMaxExtension = 15 * time.Minute
	// DefaultRetryDelay is how long a nacked message stays invisible before it is
	// received again: the visibility timeout of the queue in deployments/, so that a
	// message that keeps failing reaches the dead-letter queue after about as long as
	// it did when that timeout governed retries (maxReceiveCount × 60 s).
	DefaultRetryDelay = 60 * time.Second
)

// Config configures the queue feed.
type Config struct {
	// QueueURL is the full URL of the queue the EventBridge rule targets, as
	// https://sqs.REGION.amazonaws.com/ACCOUNT/NAME (flag --sfn-queue-url, env
	// AGENTWATCH_SFN_QUEUE_URL). Required. The router's topic is ignored: every
	// subscription reads this queue.
	QueueURL string
	// DLQURL is the URL of the queue's dead-letter queue, for the queue-depth gauge and
	// `agentwatch dlq`. Empty: read from the queue's RedrivePolicy.
	DLQURL string
	// BatchSize is the most messages one ReceiveMessage returns (MaxNumberOfMessages),
	// 1 to 10. A worker handles its batch one message at a time, so a larger batch saves
	// receive calls, not time; the last message of a batch waits for the others while
	// its visibility timeout runs. Default: 10.
	BatchSize int
	// WaitTime is the long-polling wait of ReceiveMessage (WaitTimeSeconds), whole
	// seconds up to 20. Closing does not wait for it. Default: 20 s.
	WaitTime time.Duration
	// VisibilityTimeout is the visibility timeout of the messages this feed receives
	// (whole seconds, at least 1; it overrides the queue's own). While a message waits
	// in its batch or is being handled, the subscriber extends its visibility to this
	// every third of it (ChangeMessageVisibilityBatch), so it need not cover a slow
	// batch; it bounds how long the messages of a worker that died stay invisible —
	// they come back within it — and how long a nacked message waits before it comes
	// back. Default 10 s.
	VisibilityTimeout time.Duration
	// MaxExtension bounds how long after its receive a message is kept invisible by
	// extensions: a message still being handled after it comes back after its timeout
	// and is received again (harmless — appends are idempotent — but it counts toward
	// maxReceiveCount). Default 15 min.
	MaxExtension time.Duration
	// RetryDelay is how long a nacked message (its append failed: DynamoDB down,
	// throttled) stays invisible before it is received again (ChangeMessageVisibility
	// when it is nacked). With the queue's redrive policy, a message that keeps failing
	// goes to the dead-letter queue after about maxReceiveCount × RetryDelay: long
	// enough to ride out an outage of a few minutes. Whole seconds. Default 60 s.
	RetryDelay time.Duration
	// Concurrency is how many workers receive from the queue, each with its own long
	// poll; each handles one message at a time, so it is also how many messages are
	// handled at once. Default: 4.
	Concurrency int
	// AWSConfig is the SDK configuration. Zero (no credentials provider): the SDK's
	// standard configuration, from config.LoadDefaultConfig, so that AWS_REGION,
	// AWS_ENDPOINT_URL_SQS and the credentials chain apply.
	AWSConfig aws.Config
	// OptFns adjust the SQS client (tests set BaseEndpoint).
	OptFns []func(*sqs.Options)
}

// SetDefaults fills the fields left zero.
func (c *Config) SetDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = MaxBatchSize
	}
	if c.WaitTime == 0 {
		c.WaitTime = MaxWaitTime
	}
	if c.Concurrency == 0 {
		c.Concurrency = 4
	}
	if c.VisibilityTimeout == 0 {
		c.VisibilityTimeout = DefaultVisibilityTimeout
	}
	if c.MaxExtension == 0 {
		c.MaxExtension = max(DefaultMaxExtension, c.VisibilityTimeout)
	}
	if c.RetryDelay == 0 {
		c.RetryDelay = DefaultRetryDelay
	}
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if c.QueueURL == "" {
		errs = append(errs, errors.New("sqs: QueueURL is required (--sfn-queue-url or AGENTWATCH_SFN_QUEUE_URL)"))
	} else if err := checkQueueURL(c.QueueURL); err != nil {
		errs = append(errs, fmt.Errorf("sqs: QueueURL: %w", err))
	}
	if c.DLQURL != "" {
		if err := checkQueueURL(c.DLQURL); err != nil {
			errs = append(errs, fmt.Errorf("sqs: DLQURL: %w", err))
		}
	}
	if c.BatchSize < 1 || c.BatchSize > MaxBatchSize {
		errs = append(errs, fmt.Errorf("sqs: BatchSize must be 1 to %d, is %d", MaxBatchSize, c.BatchSize))
	}
	if c.WaitTime < time.Second || c.WaitTime > MaxWaitTime {
		errs = append(errs, fmt.Errorf("sqs: WaitTime must be 1s to %s, is %s", MaxWaitTime, c.WaitTime))
	}
	if c.VisibilityTimeout < MinVisibilityTimeout || c.VisibilityTimeout > MaxVisibilityTimeout {
		errs = append(errs, fmt.Errorf("sqs: VisibilityTimeout must be %s to %s, is %s", MinVisibilityTimeout, MaxVisibilityTimeout, c.VisibilityTimeout))
	} else if c.VisibilityTimeout%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sqs: VisibilityTimeout is whole seconds, is %s", c.VisibilityTimeout))
	}
	if c.RetryDelay < time.Second || c.RetryDelay > MaxVisibilityTimeout || c.RetryDelay%time.Second != 0 {
		errs = append(errs, fmt.Errorf("sqs: RetryDelay must be whole seconds from 1s to %s, is %s", MaxVisibilityTimeout, c.RetryDelay))
	}
	if c.MaxExtension < c.VisibilityTimeout || c.MaxExtension > MaxVisibilityTimeout {
		errs = append(errs, fmt.Errorf("sqs: MaxExtension must be VisibilityTimeout (%s) to %s, is %s", c.VisibilityTimeout, MaxVisibilityTimeout, c.MaxExtension))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("sqs: Concurrency must be at least 1, is %d", c.Concurrency))
	}
	return errors.Join(errs...)
}

// checkQueueURL rejects what is not a queue URL: a bare name or an ARN.
func checkQueueURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || len(u.Path) < 2 {
		return fmt.Errorf("%q is not a queue URL (https://sqs.REGION.amazonaws.com/ACCOUNT/NAME)", s)
	}
	return nil
}
