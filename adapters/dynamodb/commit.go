package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/agentstats"
	"github.com/agentwatch/agentwatch/projections/executionindex"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// errGenerationMoved: a store following the current generation committed while a
// switch happened.
var errGenerationMoved = fmt.Errorf("the current read-model generation changed: %w", domain.ErrConflict)

// errUnattributableStats: a batch too large for one transaction whose stats deltas are
// not the sum of its sessions' contribution changes cannot be split safely.
var errUnattributableStats = errors.New("the batch's stats deltas are not its sessions' contribution changes, so it cannot be split into several transactions safely")

// maxTransactItems is DynamoDB's limit of actions per TransactWriteItems.
const maxTransactItems = 100

// txKind says what a transaction action writes, to interpret its cancellation reason.
type txKind uint8

const (
	txSession txKind = iota
	txIndex
	txStats
	txStuck
	txCheckpoint
	txGeneration
	txRecord
)

// txItem is one action of a transaction.
type txItem struct {
	kind      txKind
	what      string
	sessionID string
	version   int64
	write     types.TransactWriteItem
}

// statKey names one stats bucket.
type statKey struct{ agent, bucket string }

// txPlan is what one transaction writes; stats deltas of one bucket are merged (a
// transaction may touch an item once).
type txPlan struct {
	items    []txItem
	stats    map[statKey]agentstats.Counters
	statKeys []statKey
}

func newTxPlan() *txPlan { return &txPlan{stats: map[statKey]agentstats.Counters{}} }

func (p *txPlan) size() int { return len(p.items) + len(p.statKeys) }

// sizeWith is the plan's size once ds are added.
func (p *txPlan) sizeWith(ds []agentstats.Delta) int {
	n := p.size()
	var fresh []statKey
	for _, d := range ds {
		k := statKey{d.Agent, d.Bucket}
		if _, ok := p.stats[k]; !ok && !slices.Contains(fresh, k) {
			fresh = append(fresh, k)
		}
	}
	return n + len(fresh)
}

func (p *txPlan) addStats(ds ...agentstats.Delta) {
	for _, d := range ds {
		k := statKey{d.Agent, d.Bucket}
		cs, ok := p.stats[k]
		if !ok {
			cs = agentstats.Counters{}
			p.stats[k] = cs
			p.statKeys = append(p.statKeys, k)
		}
		agentstats.Merge(cs, d.Counters)
	}
}

// commitWriter renders a batch's actions for one generation's tables.
type commitWriter struct {
	t   Tables
	gen int
	// building is the generation a rebuild is loading (0: none): each session the
	// commit changes is recorded for it (recordChange), and the generation check also
	// checks that it is still the one being built.
	building  int
	indexedAt string
	expiresAt int64
	shards    int
}

// Commit writes the batch atomically in one TransactWriteItems when it fits (100
// actions, about 15 sessions; the live projector's batch of one event always does):
// each session Put under
// its version condition (attribute_not_exists(sessionId) for version 0, else
// version = :v), each index item Put under the rank guard (attribute_not_exists(
// executionArn) OR rank <= :rank) with indexedAt stamped to the commit time and
// expiresAt to commit time + TTL, each stats delta as an UpdateItem ADD of its
// counters, each stuck entry Put (or Delete), and the checkpoint. Index items that
// lose their rank guard are dropped and the rest retried, as the embedded backend
// skips them; transaction conflicts and throttled actions are retried after a backoff.
// When a session's version moved, nothing is written and the error matches
// domain.ErrConflict.
//
// Why stats increments are exactly-once: the ADDs ride in the same transaction as the
// Put of the session whose change they describe, and that Put is conditional on the
// version the deltas were computed from. DynamoDB applies all actions or none, so the
// deltas land exactly when the session moves from version v to v+1 — once, because no
// later transaction can find it at v again. A redelivered event, replayed against v+1,
// changes nothing and yields no deltas; a commit whose response was lost is either
// recognised by its idempotency token (the SDK sets ClientRequestToken, and its retries
// reuse it) or fails its version check, and the caller's reload finds the work done.
//
// A batch beyond one transaction (a catch-up of many sessions) is split into transactions
// of whole sessions, each carrying its sessions' own stats deltas (computed from the
// stored sessions and checked against the batch's deltas, so a caller with other deltas
// gets an error rather than a miscount) and the checkpoint in the last. Each
// transaction is exactly-once as above, but the batch is then not atomic: a conflict
// after some transactions committed returns domain.ErrConflict with those sessions
// stored, and the caller's reload-and-retry recomputes only the rest.
func (s *ReadModelStore) Commit(ctx context.Context, b app.Batch) error {
	if err := s.commit(ctx, &b); err != nil {
		return fmt.Errorf("commit %d sessions: %w", len(b.Sessions), err)
	}
	return nil
}

func (s *ReadModelStore) commit(ctx context.Context, b *app.Batch) error {
	gen, building, err := s.generationState(ctx)
	if err != nil {
		return err
	}
	now := s.now()
	w := &commitWriter{t: s.cfg.TablesOf(gen), gen: gen, building: building, indexedAt: domain.FormatTime(now),
		expiresAt: now.Add(s.cfg.TTL).Unix(), shards: s.cfg.StuckShards}

	seen := make(map[string]bool, len(b.Sessions))
	for i := range b.Sessions {
		id := b.Sessions[i].Session.ID
		if seen[id] {
			// As the embedded backend: the second write finds the version moved.
			return &app.SessionConflict{SessionID: id, Version: b.Sessions[i].Version}
		}
		seen[id] = true
	}
	index := dedupeIndex(b.Index)
	stuckWrites := dedupeStuck(b.Stuck)
	merged := mergeDeltas(b.Stats)

	reserve := 0
	if s.gen == 0 {
		reserve++ // the generation check
	}
	if b.Checkpoint != nil {
		reserve++
	}
	records := 0
	if w.building > 0 {
		records = len(b.Sessions)
	}
	var plans []*txPlan
	if len(b.Sessions)+records+len(index)+len(stuckWrites)+len(merged)+reserve <= maxTransactItems {
		p := newTxPlan()
		for i := range b.Sessions {
			item, err := w.sessionPut(&b.Sessions[i])
			if err != nil {
				return err
			}
			p.items = append(p.items, item)
			if w.building > 0 {
				p.items = append(p.items, w.recordChange(b.Sessions[i].Session.ID))
			}
		}
		for i := range index {
			item, err := w.indexPut(index[i])
			if err != nil {
				return err
			}
			p.items = append(p.items, item)
		}
		for i := range stuckWrites {
			item, err := w.stuckWrite(&stuckWrites[i])
			if err != nil {
				return err
			}
			p.items = append(p.items, item)
		}
		p.addStats(merged...)
		plans = []*txPlan{p}
	} else {
		plans, err = s.splitBatch(ctx, w, b, index, stuckWrites, merged, maxTransactItems-reserve)
		if err != nil {
			return err
		}
	}

	for i, p := range plans {
		items := p.items
		for _, k := range p.statKeys {
			if item, ok := w.statsAdd(k, p.stats[k]); ok {
				items = append(items, item)
			}
		}
		if s.gen == 0 {
			item, err := w.generationCheck()
			if err != nil {
				return err
			}
			items = append(items, item)
		}
		if i == len(plans)-1 && b.Checkpoint != nil {
			items = append(items, w.checkpointPut(b.Checkpoint))
		}
		if err := s.transact(ctx, items); err != nil {
			if i > 0 {
				s.logger.Warn("dynamodb commit split in transactions stopped partway", "committed", i, "transactions", len(plans), "error", err)
			}
			return err
		}
	}
	return nil
}

// dedupeIndex keeps one item per execution: the highest rank, the last of equal ranks
// (what applying them in order under the rank guard leaves).
func dedupeIndex(items []executionindex.Item) []executionindex.Item {
	if len(items) < 2 {
		return items
	}
	pos := make(map[string]int, len(items))
	out := make([]executionindex.Item, 0, len(items))
	for _, it := range items {
		if i, ok := pos[it.ExecutionArn]; ok {
			if it.Rank >= out[i].Rank {
				out[i] = it
			}
			continue
		}
		pos[it.ExecutionArn] = len(out)
		out = append(out, it)
	}
	return out
}

// dedupeStuck keeps the last write of each session.
func dedupeStuck(ws []app.StuckWrite) []app.StuckWrite {
	if len(ws) < 2 {
		return ws
	}
	pos := make(map[string]int, len(ws))
	out := make([]app.StuckWrite, 0, len(ws))
	for _, w := range ws {
		if i, ok := pos[w.Entry.SessionID]; ok {
			out[i] = w
			continue
		}
		pos[w.Entry.SessionID] = len(out)
		out = append(out, w)
	}
	return out
}

// mergeDeltas sums deltas per bucket and drops zero counters and empty buckets.
func mergeDeltas(ds []agentstats.Delta) []agentstats.Delta {
	var out []agentstats.Delta
	pos := map[statKey]int{}
	for _, d := range ds {
		k := statKey{d.Agent, d.Bucket}
		i, ok := pos[k]
		if !ok {
			i = len(out)
			pos[k] = i
			out = append(out, agentstats.Delta{Agent: d.Agent, Bucket: d.Bucket, Counters: agentstats.Counters{}})
		}
		agentstats.Merge(out[i].Counters, d.Counters)
	}
	kept := out[:0]
	for _, d := range out {
		if len(d.Counters) > 0 {
			kept = append(kept, d)
		}
	}
	return kept
}

// splitBatch plans a batch too large for one transaction: one group per session (its
// Put, index items, stuck writes and its own stats deltas), packed whole into
// transactions of at most capacity actions; writes of no session in the batch fill the
// last ones.
func (s *ReadModelStore) splitBatch(ctx context.Context, w *commitWriter, b *app.Batch, index []executionindex.Item,
	stuckWrites []app.StuckWrite, merged []agentstats.Delta, capacity int) ([]*txPlan, error) {
	ids := make([]string, len(b.Sessions))
	for i := range b.Sessions {
		ids[i] = b.Sessions[i].Session.ID
	}
	stored := map[string]app.VersionedSession{}
	if err := loadSessions(ctx, s.client, w.t.Sessions, ids, stored); err != nil {
		return nil, err
	}
	own := make(map[string][]agentstats.Delta, len(ids))
	var all []agentstats.Delta
	for i := range b.Sessions {
		sw := &b.Sessions[i]
		before := stored[sw.Session.ID]
		if before.Version != sw.Version {
			return nil, &app.SessionConflict{SessionID: sw.Session.ID, Version: sw.Version}
		}
		cb, okb := agentstats.ContributionOf(&before.Session)
		ca, oka := agentstats.ContributionOf(&sw.Session)
		ds := agentstats.Deltas(&cb, okb, &ca, oka)
		own[sw.Session.ID] = ds
		all = append(all, ds...)
	}
	if len(ids) > 0 && !sameDeltas(mergeDeltas(all), merged) {
		return nil, errUnattributableStats
	}

	var plans []*txPlan
	cur := newTxPlan()
	flush := func() {
		if cur.size() > 0 {
			plans = append(plans, cur)
			cur = newTxPlan()
		}
	}
	indexOf := map[string][]int{}
	for i := range index {
		indexOf[index[i].SessionID] = append(indexOf[index[i].SessionID], i)
	}
	stuckOf := map[string]int{}
	for i := range stuckWrites {
		stuckOf[stuckWrites[i].Entry.SessionID] = i
	}
	usedIndex := make([]bool, len(index))
	usedStuck := make([]bool, len(stuckWrites))
	for i := range b.Sessions {
		sw := &b.Sessions[i]
		id := sw.Session.ID
		group := make([]txItem, 0, 4)
		item, err := w.sessionPut(sw)
		if err != nil {
			return nil, err
		}
		group = append(group, item)
		if w.building > 0 {
			group = append(group, w.recordChange(id))
		}
		for _, j := range indexOf[id] {
			item, err := w.indexPut(index[j])
			if err != nil {
				return nil, err
			}
			group, usedIndex[j] = append(group, item), true
		}
		if j, ok := stuckOf[id]; ok {
			item, err := w.stuckWrite(&stuckWrites[j])
			if err != nil {
				return nil, err
			}
			group, usedStuck[j] = append(group, item), true
		}
		ds := own[id]
		if len(group)+len(ds) > capacity {
			return nil, fmt.Errorf("session %s alone needs %d actions, more than a transaction holds", id, len(group)+len(ds))
		}
		if cur.sizeWith(ds)+len(group) > capacity {
			flush()
		}
		cur.items = append(cur.items, group...)
		cur.addStats(ds...)
	}
	add := func(item txItem) {
		if cur.size()+1 > capacity {
			flush()
		}
		cur.items = append(cur.items, item)
	}
	for j := range index {
		if !usedIndex[j] {
			item, err := w.indexPut(index[j])
			if err != nil {
				return nil, err
			}
			add(item)
		}
	}
	for j := range stuckWrites {
		if !usedStuck[j] {
			item, err := w.stuckWrite(&stuckWrites[j])
			if err != nil {
				return nil, err
			}
			add(item)
		}
	}
	if len(ids) == 0 {
		for _, d := range merged {
			if cur.sizeWith([]agentstats.Delta{d}) > capacity {
				flush()
			}
			cur.addStats(d)
		}
	}
	flush()
	if len(plans) == 0 {
		plans = []*txPlan{newTxPlan()}
	}
	return plans, nil
}

// sameDeltas compares merged delta lists regardless of order.
func sameDeltas(a, b []agentstats.Delta) bool {
	if len(a) != len(b) {
		return false
	}
	byKey := make(map[statKey]agentstats.Counters, len(a))
	for _, d := range a {
		byKey[statKey{d.Agent, d.Bucket}] = d.Counters
	}
	for _, d := range b {
		cs, ok := byKey[statKey{d.Agent, d.Bucket}]
		if !ok || len(cs) != len(d.Counters) {
			return false
		}
		for k, v := range d.Counters {
			if cs[k] != v {
				return false
			}
		}
	}
	return true
}

// transact runs one transaction. Index items that lose their rank guard are dropped
// and the rest run again; conflicting or throttled actions are retried after a
// backoff; a failed session version or generation check is a conflict.
func (s *ReadModelStore) transact(ctx context.Context, items []txItem) error {
	for round := 0; len(items) > 0; round++ {
		in := &dynamodb.TransactWriteItemsInput{TransactItems: make([]types.TransactWriteItem, len(items))}
		for i := range items {
			in.TransactItems[i] = items[i].write
		}
		_, err := s.client.TransactWriteItems(ctx, in)
		if err == nil {
			return nil
		}
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) || len(tce.CancellationReasons) != len(items) {
			return edge(err)
		}
		var (
			keep      = items[:0:0]
			retryable bool
			conflict  error
			failed    error
		)
		for i, r := range tce.CancellationReasons {
			switch code := aws.ToString(r.Code); code {
			case "", "None":
				keep = append(keep, items[i])
			case "ConditionalCheckFailed":
				switch items[i].kind {
				case txIndex:
					// The stored item has a higher rank: leave it, as the guard means.
				case txSession:
					conflict = &app.SessionConflict{SessionID: items[i].sessionID, Version: items[i].version}
				case txGeneration:
					s.forgetGeneration()
					conflict = errGenerationMoved
				default:
					failed = fmt.Errorf("%s: unexpected condition failure: %w", items[i].what, err)
				}
			case "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded":
				retryable = true
				keep = append(keep, items[i])
			default:
				failed = fmt.Errorf("%s: %s: %w", items[i].what, code, err)
			}
		}
		switch {
		case conflict != nil:
			return conflict
		case failed != nil:
			return failed
		case retryable:
			if round >= maxRounds {
				return fmt.Errorf("transaction kept conflicting: %w", err)
			}
			if err := sleepRound(ctx, round, err); err != nil {
				return err
			}
		case len(keep) == len(items):
			return err
		}
		items = keep
	}
	return nil
}

// sessionPut writes a session under its version condition.
func (w *commitWriter) sessionPut(sw *app.SessionWrite) (txItem, error) {
	id := sw.Session.ID
	body, err := json.Marshal(&sw.Session)
	if err != nil {
		return txItem{}, fmt.Errorf("encode session %s: %w", id, err)
	}
	cond := expression.AttributeNotExists(expression.Name(attrSessionID))
	if sw.Version != 0 {
		cond = expression.Name(attrVersion).Equal(expression.Value(sw.Version))
	}
	e, err := conditionOf(cond)
	if err != nil {
		return txItem{}, err
	}
	item := map[string]types.AttributeValue{attrSessionID: str(id), attrVersion: num(sw.Version + 1), attrSession: str(string(body))}
	return txItem{kind: txSession, what: "session " + id, sessionID: id, version: sw.Version,
		write: types.TransactWriteItem{Put: &types.Put{TableName: &w.t.Sessions, Item: item, ConditionExpression: e.Condition(),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}}}, nil
}

// jsonTags makes attributevalue use the json tags of our types: the attribute names
// of the seeds.
func jsonTags(o *attributevalue.EncoderOptions) { o.TagKey = "json" }

func jsonTagsDecode(o *attributevalue.DecoderOptions) { o.TagKey = "json" }

// indexItem renders an index item: the fields of executionindex.Item under their JSON
// names, rank and expiresAt. GSI key attributes may not be empty strings, so an empty
// startDate (a status change without one) leaves the item out of both GSIs.
func indexItem(it executionindex.Item, expiresAt int64) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMapWithOptions(it, jsonTags)
	if err != nil {
		return nil, fmt.Errorf("encode execution %s: %w", it.ExecutionArn, err)
	}
	for _, k := range []string{attrAgentName, attrStatus, attrStartDate} {
		if stringOf(av, k) == "" {
			delete(av, k)
		}
	}
	av[attrRank] = num(it.Rank)
	av[attrExpiresAt] = num(expiresAt)
	return av, nil
}

// decodeIndexItem reads an index item.
func decodeIndexItem(item map[string]types.AttributeValue) (executionindex.Item, error) {
	var it executionindex.Item
	if err := attributevalue.UnmarshalMapWithOptions(item, &it, jsonTagsDecode); err != nil {
		return it, fmt.Errorf("decode stored execution %s: %w", stringOf(item, attrExecutionArn), err)
	}
	it.Rank, _ = numberOf(item, attrRank)
	return it, nil
}

// indexPut writes an index item under the rank guard: it replaces only an item of
// equal or lower rank, so a late RUNNING never overwrites a terminal status while a
// redrive (higher redriveCount, higher rank) reopens.
func (w *commitWriter) indexPut(it executionindex.Item) (txItem, error) {
	it.IndexedAt = w.indexedAt
	item, err := indexItem(it, w.expiresAt)
	if err != nil {
		return txItem{}, err
	}
	e, err := conditionOf(expression.Or(
		expression.AttributeNotExists(expression.Name(attrExecutionArn)),
		expression.Name(attrRank).LessThanEqual(expression.Value(it.Rank))))
	if err != nil {
		return txItem{}, err
	}
	return txItem{kind: txIndex, what: "execution " + it.ExecutionArn,
		write: types.TransactWriteItem{Put: &types.Put{TableName: &w.t.Executions, Item: item, ConditionExpression: e.Condition(),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}}}, nil
}

// statsAdd adds counters to a bucket item (ok false when every counter is zero).
//
// The ADD expression is written here rather than with the expression builder: counter
// names are attribute names such as "status.RUNNING" or "error.KeyError: 'x' [#]", and
// the builder reads '.' and "[n]" in a name as a document path even through
// NameNoDotSplit, while every name here goes through ExpressionAttributeNames verbatim.
func (w *commitWriter) statsAdd(k statKey, cs agentstats.Counters) (txItem, bool) {
	counters := make([]string, 0, len(cs))
	for c, v := range cs {
		if v != 0 {
			counters = append(counters, c)
		}
	}
	if len(counters) == 0 {
		return txItem{}, false
	}
	sort.Strings(counters)
	names := make(map[string]string, len(counters))
	values := make(map[string]types.AttributeValue, len(counters))
	parts := make([]string, len(counters))
	for i, c := range counters {
		n, v := "#c"+strconv.Itoa(i), ":c"+strconv.Itoa(i)
		names[n], values[v] = c, num(cs[c])
		parts[i] = n + " " + v
	}
	return txItem{kind: txStats, what: "stats " + k.agent + "/" + k.bucket,
		write: types.TransactWriteItem{Update: &types.Update{
			TableName:                 &w.t.AgentStats,
			Key:                       map[string]types.AttributeValue{attrAgentName: str(k.agent), attrBucket: str(k.bucket)},
			UpdateExpression:          aws.String("ADD " + strings.Join(parts, ", ")),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}}}, true
}

// shardOf is the DueIndex partition of a session: "shard#<fnv32a(id) mod shards>".
func shardOf(sessionID string, shards int) string {
	h := fnv.New32a()
	h.Write([]byte(sessionID))
	return "shard#" + strconv.Itoa(int(h.Sum32()%uint32(shards)))
}

// stuckItem renders a detector entry: the fields of stuck.Entry under their JSON
// names, nextCheckMs, dueShard (absent when the next check is stuck.Never, which keeps
// the entry out of DueIndex) and expiresAt.
func stuckItem(e *stuck.Entry, nextCheckMs, expiresAt int64, shards int) (map[string]types.AttributeValue, error) {
	av, err := attributevalue.MarshalMapWithOptions(e, jsonTags)
	if err != nil {
		return nil, fmt.Errorf("encode stuck entry %s: %w", e.SessionID, err)
	}
	av[attrNextCheckMs] = num(nextCheckMs)
	if nextCheckMs != stuck.Never {
		av[attrDueShard] = str(shardOf(e.SessionID, shards))
	}
	av[attrExpiresAt] = num(expiresAt)
	return av, nil
}

// stuckWrite upserts or deletes a detector entry.
func (w *commitWriter) stuckWrite(sw *app.StuckWrite) (txItem, error) {
	id := sw.Entry.SessionID
	if sw.Delete {
		return txItem{kind: txStuck, what: "stuck entry " + id, write: types.TransactWriteItem{Delete: &types.Delete{
			TableName: &w.t.Stuck, Key: map[string]types.AttributeValue{attrSessionID: str(id)}}}}, nil
	}
	item, err := stuckItem(&sw.Entry, sw.NextCheckMs, w.expiresAt, w.shards)
	if err != nil {
		return txItem{}, err
	}
	return txItem{kind: txStuck, what: "stuck entry " + id, write: types.TransactWriteItem{Put: &types.Put{TableName: &w.t.Stuck, Item: item}}}, nil
}

// checkpointPut stores a checkpoint in the control table.
func (w *commitWriter) checkpointPut(cp *app.Checkpoint) txItem {
	return txItem{kind: txCheckpoint, what: "checkpoint " + cp.Name, write: types.TransactWriteItem{Put: &types.Put{
		TableName: &w.t.Control, Item: checkpointItem(cp.Name, cp.Position)}}}
}

// generationCheck fails the transaction when the current generation is no longer the
// one the commit writes to, or a rebuild started or stopped loading a generation since
// the store last looked (the commit would record its changes for the wrong one).
func (w *commitWriter) generationCheck() (txItem, error) {
	building := expression.AttributeNotExists(expression.Name(attrBuilding))
	if w.building > 0 {
		building = expression.Name(attrBuilding).Equal(expression.Value(w.building))
	}
	e, err := conditionOf(expression.Name(attrGen).Equal(expression.Value(w.gen)).And(building))
	if err != nil {
		return txItem{}, err
	}
	return txItem{kind: txGeneration, what: "current generation", write: types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: &w.t.Control, Key: controlKey(pkGeneration, skCurrent), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}}}, nil
}

// recordChange counts a change of session id for the generation a rebuild is loading,
// which folds the session again from the journal into it (app.SessionRecorder).
func (w *commitWriter) recordChange(id string) txItem {
	return txItem{kind: txRecord, what: "rebuild record of session " + id, write: types.TransactWriteItem{Update: &types.Update{
		TableName: &w.t.Control, Key: controlKey(rebuildPK(w.building), rebuildSK(id)),
		UpdateExpression:          aws.String("ADD #c :one"),
		ExpressionAttributeNames:  map[string]string{"#c": attrChanges},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)}}}}
}
