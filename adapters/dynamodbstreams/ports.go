package dynamodbstreams

import (
	"context"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
)

// StreamsAPI is the part of the DynamoDB Streams API the subscriber reads with.
// *dynamodbstreams.Client implements it; tests use an in-process fake that can split
// shards, expire iterators and trim records, which DynamoDB Local cannot.
// Implementations must be safe for concurrent use.
type StreamsAPI interface {
	DescribeStream(ctx context.Context, in *dynamodbstreams.DescribeStreamInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.DescribeStreamOutput, error)
	GetShardIterator(ctx context.Context, in *dynamodbstreams.GetShardIteratorInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *dynamodbstreams.GetRecordsInput, optFns ...func(*dynamodbstreams.Options)) (*dynamodbstreams.GetRecordsOutput, error)
}

// TableDescriber finds a table's latest stream. *dynamodb.Client implements it.
type TableDescriber interface {
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var (
	_ StreamsAPI     = (*dynamodbstreams.Client)(nil)
	_ TableDescriber = (*dynamodb.Client)(nil)
)

// CheckpointShardEnd is the checkpoint of a shard that was read to its end: its
// children may be read.
const CheckpointShardEnd = "SHARD_END"

// Lease is one shard's lease, as a LeaseStore keeps it.
type Lease struct {
	// ShardID is the shard's id.
	ShardID string
	// ParentShardIDs are the shards that must be read to their end first.
	ParentShardIDs []string
	// Owner is the worker subscription that holds the lease; "" when it is free.
	Owner string
	// Counter is incremented by every write but RequestHandoff: a counter that stays
	// the same for LeaseDuration means the owner stopped renewing.
	Counter int64
	// Checkpoint is the sequence number of the last record the owners were done with,
	// CheckpointShardEnd once the shard was read to its end, "" before the first.
	Checkpoint string
	// PendingOwner is the worker that asked the owner to hand the lease over.
	PendingOwner string
	// EndedAt is when the shard was read to its end (zero before).
	EndedAt time.Time
	// Watermark is the shard's projection watermark as of the checkpoint: every
	// record of the shard appended before it was delivered and acked (see
	// Subscriber.Watermark). Zero before the shard was first read.
	Watermark time.Time
}

// Finished reports whether the shard was read to its end.
func (l Lease) Finished() bool { return l.Checkpoint == CheckpointShardEnd }

// LeaseUpdate is one conditional write of a lease: it applies only if the lease's owner
// is ExpectOwner ("" for none) and, unless HandoffTo is set, its counter is
// ExpectCounter.
type LeaseUpdate struct {
	// ExpectOwner is the owner the lease must have ("": no owner).
	ExpectOwner string
	// ExpectCounter is the counter the lease must have (ignored with HandoffTo).
	ExpectCounter int64
	// HandoffTo, when set, asks the owner to hand the lease over: it sets PendingOwner
	// if there is none, and changes nothing else (not the counter: the owner's
	// renewals must go on succeeding).
	HandoffTo string
	// NewOwner is the owner after the write ("": none). A change of owner clears
	// PendingOwner.
	NewOwner string
	// Checkpoint, when set, replaces the checkpoint.
	Checkpoint string
	// Ended sets EndedAt to now.
	Ended bool
	// Watermark, when not zero, replaces the watermark (ignored with HandoffTo).
	Watermark time.Time
}

// LeaseStore keeps the shard leases of streams. Every write is conditional, so that
// workers sharing the store agree on who holds each lease. Implementations must be safe
// for concurrent use.
type LeaseStore interface {
	// ListLeases returns every lease of the stream, read consistently.
	ListLeases(ctx context.Context, streamArn string) ([]Lease, error)
	// GetLease returns one lease, read consistently; an error matching
	// ErrLeaseNotFound when there is none. Workers re-read a lease when a write of
	// theirs failed its condition, to tell a lease taken by another worker from a write
	// of their own that was applied although its response was lost.
	GetLease(ctx context.Context, streamArn, shardID string) (Lease, error)
	// CreateLease stores l unless the shard has a lease already (created is false then).
	CreateLease(ctx context.Context, streamArn string, l Lease) (created bool, err error)
	// UpdateLease applies u to the shard's lease and returns the lease as written. When
	// the lease does not match u's expectations (or does not exist) it fails with an
	// error matching ErrLeaseConflict and writes nothing.
	UpdateLease(ctx context.Context, streamArn, shardID string, u LeaseUpdate) (Lease, error)
	// DeleteLease deletes the shard's lease if its counter is still counter; otherwise
	// it fails with an error matching ErrLeaseConflict.
	DeleteLease(ctx context.Context, streamArn, shardID string, counter int64) error
}

// Lease errors.
var (
	// ErrLeaseConflict: a lease was not as a conditional write expected (another worker
	// wrote it meanwhile). LeaseStore implementations return it.
	ErrLeaseConflict = errors.New("lease changed meanwhile")
	// ErrLeaseNotAcquired: taking a lease failed because another worker wrote it first.
	ErrLeaseNotAcquired = errors.New("lease not acquired")
	// ErrLeaseLost: a lease this worker held was taken by another.
	ErrLeaseLost = errors.New("lease lost")
	// ErrLeaseNotFound: the shard has no lease. LeaseStore.GetLease returns it.
	ErrLeaseNotFound = errors.New("no such lease")
)
