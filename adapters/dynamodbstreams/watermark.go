package dynamodbstreams

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/app"
)

var _ app.ProjectionWatermark = (*Subscriber)(nil)

// Watermark is the projection watermark of the stream of Config.TableName, as every
// worker sharing it has recorded it in the leases: every record appended before the
// time it returns was delivered in a page that was acked.
//
// Each lease carries its shard's watermark, written with the checkpoints: once a page
// is acked, the start of the GetRecords call that returned it minus
// Config.WatermarkMargin when that call reached the shard's end (an empty or short
// page), else the ApproximateCreationDateTime of the page's last record rounded down
// to the second. Watermark reads every lease (one consistent Query) and returns the
// earliest watermark of the shards that have not ended. It returns the zero time —
// nothing known, so no alert — when a shard that has not ended was never read, when
// there are no leases yet, or when a shard ended and no lease of a child shard exists
// yet (the split's children are about to be leased; the parent's end says nothing of
// them). A shard read to its end whose children are leased does not count.
//
// The watermark lags the checkpoints by up to Config.RenewInterval: a watermark that
// moved without a checkpoint (an idle shard) is written with the next renewal.
func (s *Subscriber) Watermark(ctx context.Context) (time.Time, error) {
	if s.cfg.TableName == "" {
		return time.Time{}, errors.New("stream watermark: Config.TableName is not set")
	}
	arn, err := s.streamArnOf(ctx, s.cfg.TableName)
	if err != nil {
		return time.Time{}, fmt.Errorf("stream watermark: %w", err)
	}
	leases, err := s.leases.ListLeases(ctx, arn)
	if err != nil {
		return time.Time{}, fmt.Errorf("stream watermark: %w", err)
	}
	return watermarkOf(leases), nil
}

// watermarkOf is the earliest watermark of the leases that count (see Watermark).
func watermarkOf(leases []Lease) time.Time {
	if len(leases) == 0 {
		return time.Time{}
	}
	hasChild := map[string]bool{}
	for _, l := range leases {
		for _, p := range l.ParentShardIDs {
			hasChild[p] = true
		}
	}
	var w time.Time
	for _, l := range leases {
		if l.Finished() {
			if !hasChild[l.ShardID] {
				return time.Time{}
			}
			continue
		}
		if l.Watermark.IsZero() {
			return time.Time{}
		}
		if w.IsZero() || l.Watermark.Before(w) {
			w = l.Watermark
		}
	}
	return w
}

// streamArnOf returns the latest stream of table, looked up once.
func (s *Subscriber) streamArnOf(ctx context.Context, table string) (string, error) {
	s.arnMu.Lock()
	arn, ok := s.streamArns[table]
	s.arnMu.Unlock()
	if ok {
		return arn, nil
	}
	arn, err := s.latestStream(ctx, table)
	if err != nil {
		return "", err
	}
	s.arnMu.Lock()
	s.streamArns[table] = arn
	s.arnMu.Unlock()
	return arn, nil
}
