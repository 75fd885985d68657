package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// BulkLoad writes a folded state into generation gen (its tables created when
// missing), for a rebuild: sessions stored at version 1, documents with their guard,
// schedule and expiresAt, counters rows whole. It uses BatchWriteItem (25 items a call,
// WriteConcurrency calls at once, unprocessed items sent again after a backoff), whose
// writes are unconditional: it replaces what it is given and leaves the rest, so it is
// meant for a fresh generation that no projector writes to until the load returns. Of
// several writes of one key, the last counts.
func (s *ReadModelStore) BulkLoad(ctx context.Context, gen int, data app.GenerationData) error {
	if gen < 1 {
		return fmt.Errorf("bulk load: generation %d: generations start at 1", gen)
	}
	start := time.Now()
	if err := s.CreateGeneration(ctx, gen, ""); err != nil {
		return fmt.Errorf("bulk load: %w", err)
	}
	expiresAt := s.now().Add(s.cfg.TTL).Unix()
	put := func(item map[string]types.AttributeValue) types.WriteRequest {
		return types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
	}
	load := func(table string, keys []string, reqs map[string]types.WriteRequest) error {
		ordered := make([]types.WriteRequest, 0, len(keys))
		for _, k := range keys {
			ordered = append(ordered, reqs[k])
		}
		return batchWrite(ctx, s.client, table, ordered, s.cfg.WriteConcurrency)
	}
	counts := map[string]int{}

	keys, reqs := []string{}, map[string]types.WriteRequest{}
	for _, ss := range data.Sessions {
		body, err := json.Marshal(ss)
		if err != nil {
			return fmt.Errorf("bulk load: encode session %s: %w", ss.ID, err)
		}
		if _, ok := reqs[ss.ID]; !ok {
			keys = append(keys, ss.ID)
		}
		reqs[ss.ID] = put(map[string]types.AttributeValue{attrSessionID: str(ss.ID), attrVersion: num(1), attrSession: str(string(body))})
	}
	if err := load(s.cfg.TablesOf(gen).Sessions, keys, reqs); err != nil {
		return fmt.Errorf("bulk load generation %d: %w", gen, err)
	}
	counts["sessions"] = len(keys)

	for _, t := range s.reg.Tables() {
		rows := data.RowsOf(t.Name)
		keys, reqs = keys[:0], map[string]types.WriteRequest{}
		add := func(k string, r types.WriteRequest) {
			if _, ok := reqs[k]; !ok {
				keys = append(keys, k)
			}
			reqs[k] = r
		}
		if t.Kind == projections.Documents {
			for _, r := range rows.Documents {
				item, err := docItem(&t, r.Key, r.Doc, r.Guard, r.Schedule, expiresAt, s.cfg.StuckShards)
				if err != nil {
					return fmt.Errorf("bulk load: %w", err)
				}
				add(r.Key, put(item))
			}
		} else {
			for i := range rows.Counters {
				r := &rows.Counters[i]
				item := counterItem(&t, r)
				if len(item) == 2 {
					// No counter: the row is empty.
					add(r.Partition+"\x00"+r.Sort, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: item}})
					continue
				}
				add(r.Partition+"\x00"+r.Sort, put(item))
			}
		}
		if err := load(s.cfg.ReadModelTable(t.Name, gen), keys, reqs); err != nil {
			return fmt.Errorf("bulk load generation %d: %w", gen, err)
		}
		counts[t.Name] = len(keys)
	}
	s.logger.Info("read-model generation loaded", "generation", gen, "rows", counts, "took", time.Since(start))
	return nil
}
