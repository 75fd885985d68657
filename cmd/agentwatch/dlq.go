package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/cmd/agentwatch/display"
)

// newDLQCommand is `agentwatch dlq`: what the status-change queue's dead-letter queue
// holds, read without taking anything.
func newDLQCommand(g *globals) *cobra.Command {
	var queueURL, dlqURL string
	var peek int
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "Status changes in the SQS dead-letter queue (AWS mode), shown without taking them",
		Long: "dlq shows what the dead-letter queue of the status-change queue holds: status changes whose\n" +
			"journal append kept failing until the queue's redrive policy moved them there (the worker logs\n" +
			"each one's error under its message id). Once the cause is fixed, move them back with the SQS\n" +
			"console's or CLI's dead-letter queue redrive (aws sqs start-message-move-task).\n" +
			"Messages that cannot be parsed never get there: they are quarantined with the reason; see\n" +
			"`agentwatch quarantine`.\n\n" +
			"The dead-letter queue is found through the queue's redrive policy (--sfn-queue-url), or named\n" +
			"with --dlq-url. Peeking receives the messages and makes them visible again at once; it adds one\n" +
			"to their receive count.",
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if peek < 0 {
				return fmt.Errorf("--peek: must not be negative, is %d", peek)
			}
			var dlq *sqs.DeadLetterQueue
			mods := []fx.Option{fx.Supply(sqs.Config{QueueURL: queueURL, DLQURL: dlqURL}), sqs.DLQModule, fx.Populate(&dlq)}
			return g.runModules(cmd.Context(), mods, func(ctx context.Context) error {
				return g.printDLQ(ctx, dlq, peek)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&queueURL, "sfn-queue-url", envOr("AGENTWATCH_SFN_QUEUE_URL", ""),
		"URL of the status-change queue, whose redrive policy names the dead-letter queue (env AGENTWATCH_SFN_QUEUE_URL)")
	f.StringVar(&dlqURL, "dlq-url", envOr("AGENTWATCH_SFN_DLQ_URL", ""), "URL of the dead-letter queue itself (env AGENTWATCH_SFN_DLQ_URL)")
	f.IntVar(&peek, "peek", 10, "show up to N messages (0: only count them)")
	f.BoolVar(&g.asJSON, "json", false, "print JSON")
	return cmd
}

// printDLQ prints the depth of the dead-letter queue and up to peek of its messages.
func (g *globals) printDLQ(ctx context.Context, dlq *sqs.DeadLetterQueue, peek int) error {
	depth, err := dlq.Depth(ctx)
	if err != nil {
		return err
	}
	var items []sqs.DeadLetter
	if peek > 0 {
		if items, err = dlq.Peek(ctx, peek); err != nil {
			return err
		}
	}
	if g.asJSON {
		if items == nil {
			items = []sqs.DeadLetter{}
		}
		return printJSON(g.out, map[string]any{"queueUrl": dlq.URL(), "depth": depth, "messages": items})
	}
	fmt.Fprintf(g.out, "%s: %d messages (%d in flight)\n", dlq.URL(), depth.Visible, depth.InFlight)
	if len(items) == 0 {
		return nil
	}
	fmt.Fprintln(g.out)
	t := g.newTable("MESSAGE ID", "SENT", "RECEIVES", "STATUS", "EXECUTION", "REASON").Flexible(4, 5)
	for _, it := range items {
		reason := it.Reason
		if reason == "" {
			reason = "parses: the append failed (see the worker log for the message id)"
		}
		sent := "-"
		if !it.SentAt.IsZero() {
			sent = display.Local(it.SentAt)
		}
		t.Row(it.MessageID, sent, strconv.Itoa(it.ReceiveCount), orDash(it.Status), orDash(it.ExecutionArn), reason)
	}
	if err := t.Flush(); err != nil {
		return err
	}
	if len(items) < depth.Visible {
		fmt.Fprintf(g.out, "\n%d of %d shown (--peek N for more)\n", len(items), depth.Visible)
	}
	return nil
}
