package sqs

import (
	"context"
	"errors"

	"go.uber.org/fx"
)

// DLQModule provides the dead-letter queue of the status-change queue (for `agentwatch
// dlq`) from a supplied Config, QueueURL or DLQURL: the SQS client from the SDK's
// standard configuration when the graph is built, and the queue's URL (read from the
// redrive policy of QueueURL unless DLQURL names it) when the app starts.
var DLQModule = fx.Module("sqs-dlq", fx.Provide(newFxDeadLetterQueue))

func newFxDeadLetterQueue(lc fx.Lifecycle, cfg Config) (*DeadLetterQueue, error) {
	if cfg.QueueURL == "" && cfg.DLQURL == "" {
		return nil, errors.New("sqs: the dead-letter queue needs --sfn-queue-url (its redrive policy names it) or --dlq-url")
	}
	client, err := NewClient(context.Background(), cfg)
	if err != nil {
		return nil, err
	}
	d := &DeadLetterQueue{client: client}
	lc.Append(fx.StartHook(func(ctx context.Context) error {
		url, err := resolveDLQURL(ctx, client, &cfg)
		d.url = url
		return err
	}))
	return d, nil
}
