package dynamodb

import (
	"fmt"
	"hash/fnv"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/projections"
)

// jsonTags makes attributevalue use the json tags of our types: a document's attributes
// are the names its JSON has (seed 000's for the execution index).
func jsonTags(o *attributevalue.EncoderOptions) { o.TagKey = "json" }

func jsonTagsDecode(o *attributevalue.DecoderOptions) { o.TagKey = "json" }

// shardOf is the partition of a key in an index over a whole table:
// "shard#<fnv32a(key) mod shards>".
func shardOf(key string, shards int) string {
	h := fnv.New32a()
	h.Write([]byte(key))
	return "shard#" + strconv.Itoa(int(h.Sum32()%uint32(shards)))
}

// docItem renders a document of table t: its JSON fields as attributes, the key, the
// guard and schedule attributes, the shard of every index over the whole table it is in
// (none when its sort attribute is absent: sparse), and expiresAt. GSI key attributes
// may not be empty strings, so an empty one is left out (the document is then in no
// index on it, as in every store).
func docItem(t *projections.Table, key string, doc any, guard, schedule, expiresAt int64, shards int) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMapWithOptions(doc, jsonTags)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", t.Name, key, err)
	}
	av[t.Key] = str(key)
	for _, a := range t.Attrs {
		if a.Type == projections.String && stringOf(av, a.Name) == "" {
			delete(av, a.Name)
		}
	}
	if t.Guard != "" {
		av[t.Guard] = num(guard)
	}
	if t.Schedule != "" {
		av[t.Schedule] = num(schedule)
	}
	for _, ix := range t.Indexes {
		if ix.Partition != "" {
			continue
		}
		v := projections.SortValue(t, projections.Row{Key: key, Doc: doc, Schedule: schedule}, ix.Sort)
		if v == nil || v == "" || v == projections.Never {
			continue
		}
		av[ix.ShardAttrOf()] = str(shardOf(key, shards))
	}
	if t.Expires {
		av[attrExpiresAt] = num(expiresAt)
	}
	return av, nil
}

// decodeDoc reads a document item of table t.
func decodeDoc(t *projections.Table, item map[string]types.AttributeValue) (projections.Row, error) {
	doc := t.New()
	if err := attributevalue.UnmarshalMapWithOptions(item, doc, jsonTagsDecode); err != nil {
		return projections.Row{}, fmt.Errorf("decode stored %s %s: %w", t.Name, stringOf(item, t.Key), err)
	}
	r := projections.Row{Key: stringOf(item, t.Key), Doc: doc}
	if t.Guard != "" {
		r.Guard, _ = numberOf(item, t.Guard)
	}
	if t.Schedule != "" {
		r.Schedule, _ = numberOf(item, t.Schedule)
	}
	return r, nil
}

// counterItem renders a whole counters row: its counters as number attributes.
func counterItem(t *projections.Table, r *projections.CounterRow) map[string]types.AttributeValue {
	item := map[string]types.AttributeValue{t.Partition: str(r.Partition), t.Sort: str(r.Sort)}
	for c, v := range r.Counters {
		if v != 0 && c != t.Partition && c != t.Sort {
			item[c] = num(v)
		}
	}
	return item
}

// decodeCounters reads a counters row: every number attribute but the keys is a
// counter. ok is false when no counter is non-zero (an ADD leaves zeros behind).
func decodeCounters(t *projections.Table, item map[string]types.AttributeValue) (projections.CounterRow, bool) {
	r := projections.CounterRow{Partition: stringOf(item, t.Partition), Sort: stringOf(item, t.Sort), Counters: map[string]int64{}}
	for name, av := range item {
		n, isN := av.(*types.AttributeValueMemberN)
		if !isN || name == t.Partition || name == t.Sort {
			continue
		}
		if v, err := strconv.ParseInt(n.Value, 10, 64); err == nil && v != 0 {
			r.Counters[name] = v
		}
	}
	return r, len(r.Counters) > 0
}
