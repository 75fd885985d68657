// Package dynamodbstreams is agentwatch's journal feed in AWS mode: Subscriber, a
// watermill message.Subscriber over the DynamoDB Stream of the journal table, shared by
// any number of workers through shard leases — what the Kinesis Client Library does for
// Java, for DynamoDB Streams and Go.
//
// # Reading
//
// A subscription finds the table's latest stream (DescribeTable's LatestStreamArn; ARNs
// are never built), lists its shards (DescribeStream, paginated) and reads the shards it
// holds leases for with GetShardIterator and GetRecords, at most Config.MaxRecords
// records a call and at most one call per Config.PollInterval per shard (DynamoDB allows
// two readers per shard; an idle shard is polled less often, down to
// Config.MaxPollInterval). A child shard is read only after its parent was read to its
// end (its lease's checkpoint is SHARD_END) or the parent is gone from the stream, so the
// records of one item are delivered in order across shard splits. An expired iterator is
// replaced by one after the last record read; a checkpoint behind the stream's trim
// horizon restarts the shard at TRIM_HORIZON with a warning; both are counted.
//
// # Messages
//
// Each INSERT or MODIFY record becomes one message whose payload is the domain.JournalItem
// JSON of its new image (the payload the SQLite tail delivers), with the metadata keys
// of MetadataShardID and its siblings and app.MetaPosition, app.MetaAppendedAt and
// app.MetaSource ("dynamodb-stream"). REMOVE records are skipped and counted. A record
// whose image is not a valid journal item never reaches the consumer: it is put into the
// app.Quarantine with the reason and its image as DynamoDB JSON (which `agentwatch
// ingest` accepts once repaired), and the shard moves on.
//
// Ack advances the shard's checkpoint over the contiguous prefix of acked records (acks
// that arrive out of order wait for the gap to fill). Nack redelivers the message after
// Config.NackBackoff without holding up other shards; a record nacked more than
// Config.MaxRetries times is quarantined and counts as done. Within a shard at most
// Config.MaxInFlight messages are out at once, sent in order; with 1, the default, the
// next message is sent only after the previous one was acked, so a shard's messages are
// handled strictly in order (with more, a nacked message comes again after later ones).
// Shards are delivered in parallel. Checkpoints are written at most every Config.CheckpointInterval, at every
// lease renewal, at a shard's end and when a lease is given up.
//
// # Leases
//
// Leases live in a LeaseStore (DynamoDBLeaseStore: the control table of
// adapters/dynamodb, PK "LEASE#<streamArn>", SK the shard id), one item per shard with
// its owner, a counter, the checkpoint, the parent shard ids, a requested next owner and
// when the shard ended. Every write is a compare-and-set on owner and counter and
// increments the counter. A worker renews its leases every Config.RenewInterval. Another
// worker considers a lease expired when it has seen the counter unchanged for
// Config.LeaseDuration on its own clock (no clock comparison between machines) and may
// then take it over. Each worker aims at ceil(shards/workers) leases, counting the
// distinct owners of live leases; one that has fewer takes free and expired leases, and
// otherwise asks the most loaded worker for one lease per sync: the owner sees the request
// at its next renewal, stops reading, waits for its messages in flight, writes its final
// checkpoint and hands the lease over in one write. Close does the same for every lease
// (released with no owner), so other workers take over at once.
//
// # Guarantees
//
// Delivery is at least once. A worker reads a shard only while it holds the lease; it
// stops at once when a renewal finds the lease taken, and on its own when it has not
// renewed for LeaseDuration − RenewInterval (fencing itself before anyone may regard the
// lease as expired). So no two workers read one shard at the same time as long as their
// clocks advance at about the same rate and a process is not paused for longer than
// RenewInterval between its fence check and a delivery; when that fails, or when a worker
// crashes, records after the last checkpoint are delivered again. A message delivered
// just before its worker lost the lease may still be being handled when its new owner
// delivers it again: handlers must be idempotent, which agentwatch's projections are.
// A crashed worker's leases are taken over within LeaseDuration + 2 × ShardSyncInterval.
package dynamodbstreams
