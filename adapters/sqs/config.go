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
	// VisibilityTimeout, when set, overrides the queue's visibility timeout for the
	// messages this feed receives (whole seconds). It must cover a whole batch: BatchSize
	// times the slowest handling, the router's in-process retries included; a message
	// whose timeout runs out while it is handled is received again (harmless — appends
	// are idempotent — but it counts toward maxReceiveCount). A nacked message comes back
	// when it runs out. Zero: the queue's own setting.
	VisibilityTimeout time.Duration
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
	if c.VisibilityTimeout < 0 || c.VisibilityTimeout > MaxVisibilityTimeout {
		errs = append(errs, fmt.Errorf("sqs: VisibilityTimeout must be 0 to %s, is %s", MaxVisibilityTimeout, c.VisibilityTimeout))
	} else if c.VisibilityTimeout > 0 && c.VisibilityTimeout < time.Second {
		errs = append(errs, fmt.Errorf("sqs: VisibilityTimeout is whole seconds, is %s", c.VisibilityTimeout))
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
