// Package faultinject is a loopback HTTP proxy that injects faults between an AWS SDK
// client and the server it talks to (DynamoDB Local, moto's server, or AWS itself), at
// the protocol level: what a client sees when AWS throttles it, fails, is slow, loses
// its request on the way, or applies a request and loses the answer.
//
// A Proxy forwards every request to one upstream endpoint. Point a client at Proxy.URL
// instead of the upstream (BaseEndpoint, or AWS_ENDPOINT_URL_DYNAMODB /
// AWS_ENDPOINT_URL_DYNAMODB_STREAMS / AWS_ENDPOINT_URL_SQS for a worker subprocess) and
// give the proxy Rules. Each request is matched against the rules in order: the first
// rule whose service and operation match, whose budget (Limit) is not spent and whose
// dice (Rate) come up decides what happens to it:
//
//   - Throttle answers 400 with the service's throttling error
//     (ProvisionedThroughputExceededException for DynamoDB, ThrottlingException for
//     DynamoDB Streams, RequestThrottled for SQS): the SDK backs off and retries.
//   - ServerError answers 500 (or Rule.Status) with the service's internal error.
//   - Delay holds the request for Rule.Delay before forwarding it.
//   - DropRequest closes the connection without forwarding: the server never sees it.
//   - DropResponse forwards the request, waits for the server's answer and closes the
//     connection instead of passing it on: the write was applied, the client does not
//     know, and its SDK retries it (the retry of a conditional write then fails its
//     condition, which is what idempotent writers must survive).
//
// The operation is read from the X-Amz-Target header of the AWS JSON protocols that
// DynamoDB ("DynamoDB_20120810.PutItem"), DynamoDB Streams
// ("DynamoDBStreams_20120810.GetRecords") and SQS ("AmazonSQS.ReceiveMessage") use.
// Rules can be swapped while the proxy runs (SetRules; nil stops injecting), the dice
// are seeded (Config.Seed) and Stats counts what was injected, per operation and kind.
//
// It is a test facility: it binds 127.0.0.1 only.
package faultinject
