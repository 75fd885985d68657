// Package sqs is the status-change feed of AWS mode: an EventBridge rule sends every
// "Step Functions Execution Status Change" event to an SQS queue, and Subscriber delivers
// the queue's messages to the router's ingest handler through watermill-aws's SQS
// subscriber. A message is deleted only once the handler acked it, that is once its
// journal append succeeded (or found the event already there); a message the handler
// nacks stays in the queue, comes back after its visibility timeout, and the queue's
// redrive policy moves it to the dead-letter queue after maxReceiveCount receives.
//
// Received messages are kept invisible by a heartbeat while they wait in their batch or
// are being handled: every third of Config.VisibilityTimeout (default 10 s) their
// visibility is extended to it again. The timeout can therefore be short: the messages
// of a worker that dies (SIGKILL, a lost task) come back within one timeout — about
// 10 s, plus the receive wait of the worker that takes them — instead of waiting out
// the queue's own (60 s in deployments/). A nacked message is made invisible for
// Config.RetryDelay (default 60 s, the queue's timeout in deployments/), so a message
// that keeps failing reaches the dead-letter queue after about maxReceiveCount ×
// RetryDelay, as it did when the queue's timeout governed retries. A closing
// subscriber makes the messages it received but did not hand out visible at once.
// Messages that cannot be parsed are acked after the router's poison middleware put them
// in the quarantine. DeadLetterQueue reads the dead-letter queue without consuming it
// (`agentwatch dlq`); DepthCollector exports both queues' depths.
//
// AWS permissions: the worker needs sqs:ReceiveMessage, sqs:DeleteMessage,
// sqs:ChangeMessageVisibility and sqs:GetQueueAttributes on the queue, and sqs:GetQueueAttributes and sqs:GetQueueUrl on
// the dead-letter queue (for the depth gauge); `agentwatch dlq` needs
// sqs:GetQueueAttributes on the queue, and sqs:GetQueueUrl, sqs:GetQueueAttributes,
// sqs:ReceiveMessage and sqs:ChangeMessageVisibility on the dead-letter queue.
package sqs
