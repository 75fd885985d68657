package dynamodbstreams

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// StartPosition is where a shard that has no checkpoint is read from.
type StartPosition string

// Start positions.
const (
	// StartTrimHorizon reads a shard from its oldest record still in the stream (24 h
	// in AWS): nothing written while no worker ran is missed.
	StartTrimHorizon StartPosition = "TRIM_HORIZON"
	// StartLatest reads only records written after the first read. Records written
	// before the first checkpoint of a shard may be skipped when its lease moves to
	// another worker (as with the KCL's LATEST). Child shards are always read from
	// TRIM_HORIZON, so that a split never loses records: on a stream that already has
	// closed shards, their open children are read from their start (up to 4 hours back
	// in AWS).
	StartLatest StartPosition = "LATEST"
)

// Bounds and defaults of Config.
const (
	// MinPollInterval is the shortest PollInterval: at most five GetRecords calls per
	// second per shard, leaving room for the second reader DynamoDB allows per shard.
	MinPollInterval = 200 * time.Millisecond
	// MaxRecordsLimit is the most records one GetRecords call returns.
	MaxRecordsLimit = 1000

	DefaultLeaseDuration      = 10 * time.Second
	DefaultShardSyncInterval  = 5 * time.Second
	DefaultPollInterval       = 250 * time.Millisecond
	DefaultMaxPollInterval    = 500 * time.Millisecond
	DefaultNackBackoff        = 500 * time.Millisecond
	DefaultMaxNackBackoff     = 30 * time.Second
	DefaultCheckpointInterval = time.Second
	DefaultDrainTimeout       = 5 * time.Second
	DefaultErrorBackoff       = time.Second
	DefaultStallTimeout       = time.Minute
	DefaultWatermarkMargin    = 2 * time.Second
)

// Config configures a Subscriber. The zero value plus TableName and LeaseTable, after
// SetDefaults, is a working configuration.
type Config struct {
	// TableName is the table whose latest stream is read: the journal. Empty: the topic
	// passed to Subscribe names the table (one stream per topic, as the conformance
	// suite uses it).
	TableName string
	// LeaseTable is the table that holds the shard leases: adapters/dynamodb's control
	// table (PK "LEASE#<streamArn>", SK the shard id). NewSubscriber requires it;
	// NewSubscriberWithPorts ignores it (its LeaseStore says where leases live).
	LeaseTable string
	// WorkerID names this process in lease items. Each subscription owns leases as
	// "<WorkerID>/<n>", n counting the Subscribe calls of the Subscriber. It must be
	// unique among the workers sharing a lease table. Default
	// "<hostname>:<pid>:<8 random hex digits>".
	WorkerID string
	// LeaseDuration is how long another worker waits, having seen a lease's counter
	// unchanged, before it takes the lease over. Default 10s.
	LeaseDuration time.Duration
	// RenewInterval is how often a worker renews its leases (writing the checkpoint with
	// them). At most LeaseDuration/3. Default LeaseDuration/3.
	RenewInterval time.Duration
	// ShardSyncInterval is how often a subscription lists the stream's shards and the
	// leases, creates leases for new shards, takes free and expired leases and balances
	// leases with other workers (one DescribeStream per 100 shards and one Query each
	// time). At most LeaseDuration. Default 5s.
	ShardSyncInterval time.Duration
	// PollInterval is the time between two GetRecords calls of one shard while records
	// keep coming; at least MinPollInterval (200ms). Default 250ms.
	PollInterval time.Duration
	// MaxPollInterval caps the backoff between GetRecords calls of an idle shard: each
	// empty read doubles the interval, from PollInterval up to this. It bounds the lag
	// of the first record after a quiet period. Default 500ms.
	MaxPollInterval time.Duration
	// MaxRecords is the most records one GetRecords call fetches, 1 to 1000, and so the
	// most records of a page (one message). Default 1000.
	MaxRecords int
	// NackBackoff is how long a nacked page waits before it is delivered again the
	// first time; each further nack of the same page doubles the wait, up to
	// MaxNackBackoff. A page is never given up: its records are the journal, and the
	// consumer quarantines single poison records itself. Default 500ms.
	NackBackoff time.Duration
	// MaxNackBackoff caps the wait before a page nacked again and again is delivered
	// again. Default 30s.
	MaxNackBackoff time.Duration
	// CheckpointInterval is how long an advanced checkpoint may wait before it is
	// written (it is also written with every renewal, at a shard's end and on release).
	// Records acked after the last written checkpoint are delivered again after a crash.
	// Default 1s.
	CheckpointInterval time.Duration
	// DrainTimeout bounds how long Close, a canceled Subscribe ctx or a lease handoff
	// waits for the messages in flight to be acked before their contexts are canceled
	// and the final checkpoint is written (the leases are renewed meanwhile). Default 5s.
	DrainTimeout time.Duration
	// ErrorBackoff is how long a shard or the lease sync waits after a failed call
	// (the SDK has already retried it) before trying again. Default 1s.
	ErrorBackoff time.Duration
	// StartPosition is where a shard without a checkpoint is read from. Default
	// StartTrimHorizon.
	StartPosition StartPosition
	// StallTimeout is how long a shard held by this worker may go without progress —
	// no successful GetRecords and no page acked — before the readiness check
	// (Subscriber.CheckStalled, behind /readyz) reports it stalled. Default 1m.
	StallTimeout time.Duration
	// WatermarkMargin is subtracted from the start of a GetRecords call that reached
	// the shard's end to give the shard's watermark: records of writes that were
	// acknowledged before the call began may take a moment to appear in the stream.
	// Default 2s.
	WatermarkMargin time.Duration
}

// SetDefaults fills the zero fields with their defaults.
func (c *Config) SetDefaults() {
	if c.WorkerID == "" {
		c.WorkerID = defaultWorkerID()
	}
	if c.LeaseDuration == 0 {
		c.LeaseDuration = DefaultLeaseDuration
	}
	if c.RenewInterval == 0 {
		c.RenewInterval = c.LeaseDuration / 3
	}
	if c.ShardSyncInterval == 0 {
		c.ShardSyncInterval = min(DefaultShardSyncInterval, c.LeaseDuration)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.MaxPollInterval == 0 {
		c.MaxPollInterval = max(DefaultMaxPollInterval, c.PollInterval)
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = MaxRecordsLimit
	}
	if c.NackBackoff == 0 {
		c.NackBackoff = DefaultNackBackoff
	}
	if c.MaxNackBackoff == 0 {
		c.MaxNackBackoff = max(DefaultMaxNackBackoff, c.NackBackoff)
	}
	if c.CheckpointInterval == 0 {
		c.CheckpointInterval = DefaultCheckpointInterval
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.ErrorBackoff == 0 {
		c.ErrorBackoff = DefaultErrorBackoff
	}
	if c.StartPosition == "" {
		c.StartPosition = StartTrimHorizon
	}
	if c.StallTimeout == 0 {
		c.StallTimeout = DefaultStallTimeout
	}
	if c.WatermarkMargin == 0 {
		c.WatermarkMargin = DefaultWatermarkMargin
	}
}

// Validate reports every invalid field (after SetDefaults), joined with errors.Join.
// LeaseTable is checked by NewSubscriber, which needs it.
func (c *Config) Validate() error {
	var errs []error
	if c.WorkerID == "" {
		errs = append(errs, errors.New("WorkerID must not be empty"))
	}
	if c.LeaseDuration <= 0 {
		errs = append(errs, fmt.Errorf("LeaseDuration %s: must be positive", c.LeaseDuration))
	}
	if c.RenewInterval <= 0 || 3*c.RenewInterval > c.LeaseDuration {
		errs = append(errs, fmt.Errorf("RenewInterval %s: must be positive and at most LeaseDuration/3 (%s)", c.RenewInterval, c.LeaseDuration/3))
	}
	if c.ShardSyncInterval <= 0 || c.ShardSyncInterval > c.LeaseDuration {
		errs = append(errs, fmt.Errorf("ShardSyncInterval %s: must be positive and at most LeaseDuration (%s)", c.ShardSyncInterval, c.LeaseDuration))
	}
	if c.PollInterval < MinPollInterval {
		errs = append(errs, fmt.Errorf("PollInterval %s: must be at least %s (DynamoDB allows two readers per shard)", c.PollInterval, MinPollInterval))
	}
	if c.MaxPollInterval < c.PollInterval {
		errs = append(errs, fmt.Errorf("MaxPollInterval %s: must be at least PollInterval (%s)", c.MaxPollInterval, c.PollInterval))
	}
	if c.MaxRecords < 1 || c.MaxRecords > MaxRecordsLimit {
		errs = append(errs, fmt.Errorf("MaxRecords %d: must be between 1 and %d", c.MaxRecords, MaxRecordsLimit))
	}
	if c.NackBackoff < 0 {
		errs = append(errs, fmt.Errorf("NackBackoff %s: must not be negative", c.NackBackoff))
	}
	if c.MaxNackBackoff < c.NackBackoff {
		errs = append(errs, fmt.Errorf("MaxNackBackoff %s: must be at least NackBackoff (%s)", c.MaxNackBackoff, c.NackBackoff))
	}
	if c.CheckpointInterval < 0 {
		errs = append(errs, fmt.Errorf("CheckpointInterval %s: must not be negative", c.CheckpointInterval))
	}
	if c.DrainTimeout < 0 {
		errs = append(errs, fmt.Errorf("DrainTimeout %s: must not be negative", c.DrainTimeout))
	}
	if c.ErrorBackoff <= 0 {
		errs = append(errs, fmt.Errorf("ErrorBackoff %s: must be positive", c.ErrorBackoff))
	}
	switch c.StartPosition {
	case StartTrimHorizon, StartLatest:
	default:
		errs = append(errs, fmt.Errorf("StartPosition %q: must be %s or %s", c.StartPosition, StartTrimHorizon, StartLatest))
	}
	if c.StallTimeout < c.MaxPollInterval+c.ErrorBackoff {
		errs = append(errs, fmt.Errorf("StallTimeout %s: must be at least MaxPollInterval + ErrorBackoff (%s)", c.StallTimeout, c.MaxPollInterval+c.ErrorBackoff))
	}
	if c.WatermarkMargin < 0 {
		errs = append(errs, fmt.Errorf("WatermarkMargin %s: must not be negative", c.WatermarkMargin))
	}
	return errors.Join(errs...)
}

// defaultWorkerID is "<hostname>:<pid>:<8 random hex digits>": unique even for two
// processes with the same pid in containers of the same name.
func defaultWorkerID() string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "worker"
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return host + ":" + strconv.Itoa(os.Getpid()) + ":" + hex.EncodeToString(b[:])
}
