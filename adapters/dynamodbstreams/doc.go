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
// replaced by one after the last record read; a checkpoint (or a record read) behind the
// stream's trim horizon restarts the shard at TRIM_HORIZON, logged as an error and
// counted as records lost; a fresh shard, with no checkpoint, whose horizon moved
// before its first read is simply read again from TRIM_HORIZON (nothing was lost).
//
// # Pages
//
// Each GetRecords call of a shard becomes one page message (KCL's processRecords): its
// payload is an app.JournalPage built with app.NewPageMessage (metadata app.MetaPage
// "1"), whose records are the call's INSERT and MODIFY records in shard order, each an
// app.JournalRecord with its position "<shard id>/<sequence number>", its
// ApproximateCreationDateTime and its new image as domain.JournalItem JSON (what the
// SQLite tail delivers). Config.MaxRecords (at most 1000) bounds a page. REMOVE records
// are skipped and counted. A record whose image is not a valid journal item is left
// out of the page: it is put into the app.Quarantine with the reason and its image as
// DynamoDB JSON (which `agentwatch ingest` accepts once repaired) before the page goes
// out. A call that returned nothing to deliver sends no message.
//
// One page of a shard is out at a time, so a shard's records are handled strictly in
// order (the reader reads one page ahead). One Ack covers the whole page: it moves the
// shard's checkpoint to the last record the call returned. A Nack delivers the same
// page again (same UUID: its first position) after Config.NackBackoff, doubling with
// each further nack up to Config.MaxNackBackoff, without holding up other shards. A
// page is never quarantined or skipped as a whole: its records are the journal, and
// the consumer quarantines a single poison record inside a page itself. Shards are
// delivered in parallel. Checkpoints are written at most every
// Config.CheckpointInterval, at every lease renewal, at a shard's end and when a lease
// is given up.
//
// # Watermark
//
// The Subscriber is the stream's app.ProjectionWatermark. When a page is acked (and
// every page before it), the shard's watermark becomes the start of its GetRecords
// call minus Config.WatermarkMargin if that call reached the shard's end (an empty or
// short page), else the page's last ApproximateCreationDateTime rounded down to the
// second; it is kept in the lease with the checkpoint. Watermark reads every lease and
// returns the earliest watermark of the shards that have not ended (zero while a shard
// was never read). The stuck detector judges deadlines against it, so a backlog delays
// alerts instead of inventing them.
//
// # Stalls
//
// Per shard held, agentwatch_dynamodbstreams_shard_seconds_since_read is the time since
// the last successful GetRecords, and agentwatch_dynamodbstreams_lag_seconds the time
// since the point up to which the shard is known read, so both grow while reads fail.
// CheckStalled, a readiness check that the fx module adds to /readyz, fails while a
// shard has made no progress (no successful read, no page acked) for longer than
// Config.StallTimeout.
//
// # Leases
//
// Leases live in a LeaseStore (DynamoDBLeaseStore: the control table of
// adapters/dynamodb, PK "LEASE#<streamArn>", SK the shard id), one item per shard with
// its owner, a counter, the checkpoint, the watermark, the parent shard ids, a
// requested next owner and when the shard ended. Every write is a compare-and-set on
// owner and counter and increments the counter. A write can fail its condition without
// anyone else having touched the lease: when its response was lost and the SDK retried
// an attempt that had been applied, or when an earlier write failed without an answer
// and was applied all the same. So a worker whose write fails its condition reads the
// lease again (consistently) and carries on while it is still its own — its owner with
// the counter as the write would have left it, or one ahead from an earlier write of
// its own — and counts it (lease_writes_confirmed_total); a lease given away (handoff,
// release) that is no longer its own is done either way. Only a lease that another
// worker took is lost. A worker renews its leases every Config.RenewInterval. Another
// worker considers a lease expired when it has seen the counter unchanged for
// Config.LeaseDuration on its own clock (no clock comparison between machines) and may
// then take it over. Each worker aims at ceil(shards/workers) leases, counting the
// distinct owners of live leases; one that has fewer takes free and expired leases, and
// otherwise asks the most loaded worker for one lease per sync: the owner sees the
// request at its next renewal, stops reading, waits for its page in flight, writes its
// final checkpoint and hands the lease over in one write. Close does the same for every
// lease (released with no owner), so other workers take over at once.
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
