package sqs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/agentwatch/agentwatch/domain"
)

// DeadLetterQueue reads the dead-letter queue of the status-change queue without
// consuming it. What lands there failed for reasons other than its content (the journal
// could not be written maxReceiveCount times in a row): once the cause is fixed, move the
// messages back with the console's or the CLI's DLQ redrive (StartMessageMoveTask).
// Messages that cannot be parsed never get there; they are quarantined with the reason
// (`agentwatch quarantine`).
type DeadLetterQueue struct {
	client *sqs.Client
	url    string
}

// DeadLetter is one message in the dead-letter queue.
type DeadLetter struct {
	// MessageID is the SQS message id, the one the worker logged when it gave up.
	MessageID string `json:"messageId"`
	// SentAt is when the message was first sent to the status-change queue.
	SentAt time.Time `json:"sentAt,omitzero"`
	// ReceiveCount is the message's ApproximateReceiveCount, peeks included.
	ReceiveCount int `json:"receiveCount"`
	// SourceQueueArn is the queue the redrive policy moved it from, when SQS says.
	SourceQueueArn string `json:"sourceQueueArn,omitempty"`
	// Kind is what the body is (domain.InputKind) when it parses.
	Kind domain.InputKind `json:"kind,omitempty"`
	// ExecutionArn and Status say which status change it is, when it parses as one.
	ExecutionArn string `json:"executionArn,omitempty"`
	Status       string `json:"status,omitempty"`
	// Reason is why the body cannot be ingested, when it cannot; empty for a body that
	// parses, which failed for a passing reason (see the worker's log for MessageID).
	Reason string `json:"reason,omitempty"`
	// Body is the message body.
	Body string `json:"body"`
}

// OpenDeadLetterQueue returns the dead-letter queue of cfg: cfg.DLQURL, or the one the
// redrive policy of cfg.QueueURL names (which needs sqs:GetQueueAttributes on it).
func OpenDeadLetterQueue(ctx context.Context, cfg Config) (*DeadLetterQueue, error) {
	if cfg.QueueURL == "" && cfg.DLQURL == "" {
		return nil, errors.New("sqs: the dead-letter queue needs --sfn-queue-url (its redrive policy names it) or --dlq-url")
	}
	client, err := NewClient(ctx, cfg)
	if err != nil {
		return nil, err
	}
	url, err := resolveDLQURL(ctx, client, &cfg)
	if err != nil {
		return nil, err
	}
	return &DeadLetterQueue{client: client, url: url}, nil
}

// URL returns the dead-letter queue's URL.
func (d *DeadLetterQueue) URL() string { return d.url }

// Depth returns how many messages the dead-letter queue holds.
func (d *DeadLetterQueue) Depth(ctx context.Context) (QueueDepth, error) {
	return Depth(ctx, d.client, d.url)
}

// peekHold is how long Peek keeps the messages it has seen invisible, so that its next
// receive brings others; it makes them visible again before it returns. Should it die
// in between, they come back by themselves after peekHold.
const peekHold = 30 * time.Second

// Peek returns up to n messages of the dead-letter queue without taking them: it
// receives them, and before returning sets their visibility timeout to 0 so that they
// are visible again, still in the queue. (A receive cannot ask for a visibility timeout
// of 0 itself: the SDK leaves a zero out of the request, and the queue's own applies.)
// Each peek adds one to a message's receive count, harmless in a dead-letter queue with
// no redrive policy of its own. Order is SQS's: roughly, not strictly, oldest first.
func (d *DeadLetterQueue) Peek(ctx context.Context, n int) (out []DeadLetter, err error) {
	var handles []types.ChangeMessageVisibilityBatchRequestEntry
	defer func() {
		if rerr := d.unhide(context.WithoutCancel(ctx), handles); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}()
	seen := map[string]bool{}
	for len(out) < n {
		res, err := d.client.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
			QueueUrl:                    aws.String(d.url),
			MaxNumberOfMessages:         int32(min(n-len(out), MaxBatchSize)),
			VisibilityTimeout:           int32(peekHold / time.Second),
			WaitTimeSeconds:             1, // long polling asks every server, not a sample of them
			MessageAttributeNames:       []string{"All"},
			MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameAll},
		})
		if err != nil {
			return out, fmt.Errorf("peek dead-letter queue %s: %w", d.url, err)
		}
		if len(res.Messages) == 0 {
			break
		}
		for _, m := range res.Messages {
			handles = append(handles, types.ChangeMessageVisibilityBatchRequestEntry{
				Id: aws.String(strconv.Itoa(len(handles))), ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: 0})
			if id := aws.ToString(m.MessageId); !seen[id] && len(out) < n {
				seen[id] = true
				out = append(out, deadLetterOf(m))
			}
		}
	}
	return out, nil
}

// unhide makes the peeked messages visible again.
func (d *DeadLetterQueue) unhide(ctx context.Context, entries []types.ChangeMessageVisibilityBatchRequestEntry) error {
	var errs []error
	for len(entries) > 0 {
		batch := entries[:min(len(entries), MaxBatchSize)]
		entries = entries[len(batch):]
		res, err := d.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(d.url), Entries: batch})
		if err != nil {
			errs = append(errs, fmt.Errorf("make peeked messages visible again (they will be after %s): %w", peekHold, err))
			continue
		}
		for _, f := range res.Failed {
			errs = append(errs, fmt.Errorf("make a peeked message visible again: %s: %s", aws.ToString(f.Code), aws.ToString(f.Message)))
		}
	}
	return errors.Join(errs...)
}

// deadLetterOf describes a received message, parsing its body as the worker would.
func deadLetterOf(m types.Message) DeadLetter {
	dl := DeadLetter{
		MessageID:      aws.ToString(m.MessageId),
		Body:           aws.ToString(m.Body),
		SourceQueueArn: m.Attributes["DeadLetterQueueSourceArn"],
	}
	dl.ReceiveCount, _ = strconv.Atoi(m.Attributes[string(types.MessageSystemAttributeNameApproximateReceiveCount)])
	if ms, err := strconv.ParseInt(m.Attributes[string(types.MessageSystemAttributeNameSentTimestamp)], 10, 64); err == nil {
		dl.SentAt = time.UnixMilli(ms).UTC()
	}
	in, err := domain.DecodeInput([]byte(dl.Body))
	if err != nil {
		dl.Reason = err.Error()
		return dl
	}
	dl.Kind = in.Kind
	switch {
	case in.StatusChange != nil:
		dl.ExecutionArn, dl.Status = in.StatusChange.ExecutionArn, string(in.StatusChange.Status)
		// What the worker checks next; the default mapping stands in for the worker's.
		if _, err := domain.MapStatusChange(context.Background(), *in.StatusChange, nil, domain.MappingConfig{}); err != nil {
			dl.Reason = err.Error()
		}
	case in.Event != nil:
		dl.ExecutionArn, dl.Status = in.Event.Exec.ExecutionArn, string(in.Event.Status)
	}
	return dl
}
