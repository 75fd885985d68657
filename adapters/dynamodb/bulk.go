package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// BulkLoad writes a folded state into generation gen (its tables created when
// missing), for a rebuild: sessions stored at version 1, index items with indexedAt
// stamped (unless set) and expiresAt, stats buckets with their counters, stuck writes
// applied. It uses BatchWriteItem (25 items a call, WriteConcurrency calls at once,
// unprocessed items sent again after a backoff), whose writes are unconditional: it
// replaces what it is given and leaves the rest, so it is meant for a fresh generation
// that no projector writes to until the load returns. Of several writes of one key, the
// last counts.
func (s *ReadModelStore) BulkLoad(ctx context.Context, gen int, data app.GenerationData) error {
	if gen < 1 {
		return fmt.Errorf("bulk load: generation %d: generations start at 1", gen)
	}
	start := time.Now()
	if err := s.CreateGeneration(ctx, gen); err != nil {
		return fmt.Errorf("bulk load: %w", err)
	}
	t := s.cfg.TablesOf(gen)
	now := s.now()
	indexedAt, expiresAt := domain.FormatTime(now), now.Add(s.cfg.TTL).Unix()

	put := func(item map[string]types.AttributeValue) types.WriteRequest {
		return types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
	}
	type load struct {
		table string
		reqs  map[string]types.WriteRequest // by key: the last write of a key wins
		order []string
	}
	newLoad := func(table string) *load { return &load{table: table, reqs: map[string]types.WriteRequest{}} }
	add := func(l *load, key string, r types.WriteRequest) {
		if _, ok := l.reqs[key]; !ok {
			l.order = append(l.order, key)
		}
		l.reqs[key] = r
	}
	sessionsL, itemsL, statsL, stuckL := newLoad(t.Sessions), newLoad(t.Executions), newLoad(t.AgentStats), newLoad(t.Stuck)
	sessions, items, buckets, stuckWrites := data.Sessions, data.AllItems(), data.AllBuckets(), data.AllStuck()
	for _, ss := range sessions {
		body, err := json.Marshal(ss)
		if err != nil {
			return fmt.Errorf("bulk load: encode session %s: %w", ss.ID, err)
		}
		add(sessionsL, ss.ID, put(map[string]types.AttributeValue{attrSessionID: str(ss.ID), attrVersion: num(1), attrSession: str(string(body))}))
	}
	for _, it := range items {
		if it.IndexedAt == "" {
			it.IndexedAt = indexedAt
		}
		av, err := indexItem(it, expiresAt)
		if err != nil {
			return fmt.Errorf("bulk load: %w", err)
		}
		add(itemsL, it.ExecutionArn, put(av))
	}
	for i := range buckets {
		b := &buckets[i]
		key := b.Agent + "\x00" + b.Bucket
		item := bucketItem(b)
		if len(item) == 2 {
			// No counter: the bucket is empty.
			add(statsL, key, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: item}})
			continue
		}
		add(statsL, key, put(item))
	}
	for i := range stuckWrites {
		w := &stuckWrites[i]
		id := w.Entry.SessionID
		if w.Delete {
			add(stuckL, id, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: map[string]types.AttributeValue{attrSessionID: str(id)}}})
			continue
		}
		av, err := stuckItem(&w.Entry, w.NextCheckMs, expiresAt, s.cfg.StuckShards)
		if err != nil {
			return fmt.Errorf("bulk load: %w", err)
		}
		add(stuckL, id, put(av))
	}
	for _, l := range []*load{sessionsL, itemsL, statsL, stuckL} {
		reqs := make([]types.WriteRequest, len(l.order))
		for i, k := range l.order {
			reqs[i] = l.reqs[k]
		}
		if err := batchWrite(ctx, s.client, l.table, reqs, s.cfg.WriteConcurrency); err != nil {
			return fmt.Errorf("bulk load generation %d: %w", gen, err)
		}
	}
	s.logger.Info("read-model generation loaded", "generation", gen, "sessions", len(sessions),
		"executions", len(items), "buckets", len(buckets), "stuck", len(stuckWrites), "took", time.Since(start))
	return nil
}
