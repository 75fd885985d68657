package sqs

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go/middleware"
)

// heartbeat keeps the messages a subscriber received invisible for as long as they wait
// in their batch or are being handled, and only so long: every Config.VisibilityTimeout
// / 3 it extends the visibility of each message held to Config.VisibilityTimeout
// (ChangeMessageVisibilityBatch). So the visibility timeout can be short — a worker that
// dies stops extending, and its messages come back within one timeout — while a slow
// message is never received twice because its timeout ran out.
//
// It learns what is held from the SQS client itself, through middlewares on the
// subscriber's client (watermill-aws hides its receive loop): a ReceiveMessage adds its
// messages, as one batch; a DeleteMessage that succeeds removes its message; one that
// fails removes the rest of that batch too (watermill-aws abandons the rest of a batch
// after a failed delete, leaving it to come back after its timeout). A message
// released after a nack (see releaseSet) is removed, and its visibility set to
// Config.RetryDelay. No message is extended beyond Config.MaxExtension after its receive,
// so a handle that is never settled cannot keep a message away for good. Close stops
// the heartbeat and makes the messages still held visible at once (visibility 0), so
// that other workers take them without waiting.
type heartbeat struct {
	queueURL   string
	visibility time.Duration
	maxHold    time.Duration
	metrics    *Metrics
	logger     *slog.Logger
	// client is the subscriber's SQS client, set once built (the middlewares are part
	// of it).
	client *sqs.Client

	mu   sync.Mutex
	held map[string]*heldMessage

	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// heldMessage is a received message not settled yet.
type heldMessage struct {
	batch      *[]string
	receivedAt time.Time
}

func newHeartbeat(cfg Config, metrics *Metrics, logger *slog.Logger) *heartbeat {
	return &heartbeat{queueURL: cfg.QueueURL, visibility: cfg.VisibilityTimeout, maxHold: cfg.MaxExtension, metrics: metrics,
		logger: logger, held: map[string]*heldMessage{}, stop: make(chan struct{}), done: make(chan struct{})}
}

// install adds the middlewares that track received and settled messages.
func (h *heartbeat) install(o *sqs.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("agentwatchHeartbeat",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				switch p := in.Parameters.(type) {
				case *sqs.ReceiveMessageInput:
					if r, ok := out.Result.(*sqs.ReceiveMessageOutput); ok && err == nil {
						h.received(r.Messages)
					}
				case *sqs.DeleteMessageInput:
					h.deleted(aws.ToString(p.ReceiptHandle), err)
				}
				return out, md, err
			}), middleware.After)
	})
}

func (h *heartbeat) received(msgs []types.Message) {
	if len(msgs) == 0 {
		return
	}
	now := time.Now()
	batch := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if m.ReceiptHandle != nil {
			batch = append(batch, *m.ReceiptHandle)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, handle := range batch {
		h.held[handle] = &heldMessage{batch: &batch, receivedAt: now}
	}
}

// deleted forgets a message once its DeleteMessage returned; after a failed delete the
// rest of its batch is forgotten too.
func (h *heartbeat) deleted(handle string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m, ok := h.held[handle]
	if !ok {
		return
	}
	delete(h.held, handle)
	if err == nil {
		return
	}
	for _, other := range *m.batch {
		delete(h.held, other)
	}
}

// forget stops extending a message.
func (h *heartbeat) forget(handle string) {
	h.mu.Lock()
	delete(h.held, handle)
	h.mu.Unlock()
}

// retryAfter stops extending a nacked message and sets its visibility to delay, when
// it is received again. If that fails, it comes back after what is left of its
// timeout instead.
func (h *heartbeat) retryAfter(handle string, delay time.Duration) {
	h.forget(handle)
	h.change([]string{handle}, delay, resultDelayed)
}

// count returns how many messages are held.
func (h *heartbeat) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.held)
}

// start runs the heartbeat until close.
func (h *heartbeat) start(client *sqs.Client) {
	h.client = client
	go func() {
		defer close(h.done)
		t := time.NewTicker(h.visibility / 3)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-t.C:
				h.extend()
			}
		}
	}()
}

// due returns the messages to extend now, forgetting those held for longer than the
// limit.
func (h *heartbeat) due(now time.Time) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]string, 0, len(h.held))
	for handle, m := range h.held {
		if now.Sub(m.receivedAt) >= h.maxHold {
			delete(h.held, handle)
			h.logger.Warn("a status change was held past the extension limit: it comes back after its visibility timeout",
				"limit", h.maxHold)
			continue
		}
		out = append(out, handle)
	}
	return out
}

// extend sets the visibility of every message held to the visibility timeout.
func (h *heartbeat) extend() {
	h.change(h.due(time.Now()), h.visibility, resultExtended)
}

// change sets the visibility of handles, ten at a time.
func (h *heartbeat) change(handles []string, to time.Duration, result string) {
	secs := int32(to / time.Second)
	for len(handles) > 0 {
		n := min(len(handles), MaxBatchSize)
		entries := make([]types.ChangeMessageVisibilityBatchRequestEntry, n)
		for i, handle := range handles[:n] {
			entries[i] = types.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(handle), VisibilityTimeout: secs}
		}
		ctx, cancel := context.WithTimeout(context.Background(), h.visibility/3)
		out, err := h.client.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: aws.String(h.queueURL), Entries: entries})
		cancel()
		if err != nil {
			// Not fatal: the next beat tries again, well before the timeout runs out.
			h.metrics.visibilityChange(resultFailed, n)
			h.logger.Warn("extend the visibility of status changes being handled", "messages", n, "error", err)
		} else {
			h.metrics.visibilityChange(result, n-len(out.Failed))
			for _, f := range out.Failed {
				// A message deleted meanwhile, or whose handle expired: nothing to keep.
				i, _ := strconv.Atoi(aws.ToString(f.Id))
				h.metrics.visibilityChange(resultFailed, 1)
				h.forget(handles[i])
				h.logger.Debug("visibility not changed", "code", aws.ToString(f.Code), "message", aws.ToString(f.Message))
			}
		}
		handles = handles[n:]
	}
}

// close stops the heartbeat and makes the messages still held visible at once.
func (h *heartbeat) close() {
	h.once.Do(func() {
		close(h.stop)
		if h.client == nil {
			return
		}
		<-h.done
		h.mu.Lock()
		handles := make([]string, 0, len(h.held))
		for handle := range h.held {
			handles = append(handles, handle)
		}
		clear(h.held)
		h.mu.Unlock()
		if len(handles) > 0 {
			h.change(handles, 0, resultReturned)
			h.logger.Info("status changes received but not handled made visible again for other workers", "messages", len(handles))
		}
	})
}
