package sqs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// awsConfig returns cfg.AWSConfig, or the SDK's standard configuration when it is zero.
func awsConfig(ctx context.Context, cfg *Config) (aws.Config, error) {
	if cfg.AWSConfig.Credentials != nil {
		return cfg.AWSConfig, nil
	}
	ac, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config for SQS: %w", err)
	}
	return ac, nil
}

// NewClient returns an SQS client for cfg: its AWSConfig (or the SDK's standard
// configuration) and OptFns.
func NewClient(ctx context.Context, cfg Config) (*sqs.Client, error) {
	ac, err := awsConfig(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(ac, cfg.OptFns...), nil
}

// QueueInfo is what a queue's attributes say about how it delivers.
type QueueInfo struct {
	// URL and Arn identify the queue.
	URL, Arn string
	// VisibilityTimeout is the queue's visibility timeout.
	VisibilityTimeout time.Duration
	// DLQArn is the dead-letter queue of its redrive policy; "" when it has none.
	DLQArn string
	// MaxReceiveCount is how many receives the redrive policy allows before it moves a
	// message to DLQArn; 0 when there is no redrive policy.
	MaxReceiveCount int
}

// DescribeQueue reads a queue's ARN, visibility timeout and redrive policy.
func DescribeQueue(ctx context.Context, client *sqs.Client, url string) (QueueInfo, error) {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn,
			types.QueueAttributeNameVisibilityTimeout, types.QueueAttributeNameRedrivePolicy},
	})
	if err != nil {
		return QueueInfo{}, fmt.Errorf("describe queue %s: %w", url, err)
	}
	info := QueueInfo{URL: url, Arn: out.Attributes[string(types.QueueAttributeNameQueueArn)]}
	if v, err := strconv.Atoi(out.Attributes[string(types.QueueAttributeNameVisibilityTimeout)]); err == nil {
		info.VisibilityTimeout = time.Duration(v) * time.Second
	}
	if rp := out.Attributes[string(types.QueueAttributeNameRedrivePolicy)]; rp != "" {
		// maxReceiveCount is a number from AWS and a string from some tools (and from
		// CloudFormation templates): take both.
		var p struct {
			DeadLetterTargetArn string          `json:"deadLetterTargetArn"`
			MaxReceiveCount     json.RawMessage `json:"maxReceiveCount"`
		}
		if err := json.Unmarshal([]byte(rp), &p); err != nil {
			return info, fmt.Errorf("queue %s: redrive policy %q: %w", url, rp, err)
		}
		info.DLQArn = p.DeadLetterTargetArn
		info.MaxReceiveCount, _ = strconv.Atoi(strings.Trim(string(p.MaxReceiveCount), `"`))
	}
	return info, nil
}

// QueueURLOf returns the URL of the queue arn names (arn:aws:sqs:REGION:ACCOUNT:NAME).
func QueueURLOf(ctx context.Context, client *sqs.Client, arn string) (string, error) {
	parts := strings.Split(arn, ":")
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sqs" {
		return "", fmt.Errorf("%q is not an SQS queue ARN", arn)
	}
	out, err := client.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(parts[5]), QueueOwnerAWSAccountId: aws.String(parts[4])})
	if err != nil {
		return "", fmt.Errorf("URL of queue %s: %w", arn, err)
	}
	return aws.ToString(out.QueueUrl), nil
}

// errNoDLQ: the queue has no redrive policy, so no dead-letter queue.
var errNoDLQ = errors.New("the queue has no redrive policy (no dead-letter queue): set one, or name the DLQ with --dlq-url")

// resolveDLQURL returns cfg.DLQURL, or the URL of the dead-letter queue of the redrive
// policy of cfg.QueueURL.
func resolveDLQURL(ctx context.Context, client *sqs.Client, cfg *Config) (string, error) {
	if cfg.DLQURL != "" {
		return cfg.DLQURL, nil
	}
	info, err := DescribeQueue(ctx, client, cfg.QueueURL)
	if err != nil {
		return "", err
	}
	if info.DLQArn == "" {
		return "", fmt.Errorf("dead-letter queue of %s: %w", cfg.QueueURL, errNoDLQ)
	}
	return QueueURLOf(ctx, client, info.DLQArn)
}

// QueueDepth is how many messages a queue holds, approximately.
type QueueDepth struct {
	// Visible messages wait to be received.
	Visible int `json:"visible"`
	// InFlight messages were received and are neither deleted nor visible again.
	InFlight int `json:"inFlight"`
	// Delayed messages are not visible yet.
	Delayed int `json:"delayed"`
}

// Depth reads a queue's approximate message counts.
func Depth(ctx context.Context, client *sqs.Client, url string) (QueueDepth, error) {
	out, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{
		QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible, types.QueueAttributeNameApproximateNumberOfMessagesDelayed},
	})
	if err != nil {
		return QueueDepth{}, fmt.Errorf("depth of queue %s: %w", url, err)
	}
	n := func(a types.QueueAttributeName) int {
		v, _ := strconv.Atoi(out.Attributes[string(a)])
		return v
	}
	return QueueDepth{
		Visible:  n(types.QueueAttributeNameApproximateNumberOfMessages),
		InFlight: n(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible),
		Delayed:  n(types.QueueAttributeNameApproximateNumberOfMessagesDelayed),
	}, nil
}
