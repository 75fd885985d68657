package dynamodb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// errGenerationMoved: a store following the current generation committed while a
// switch happened.
var errGenerationMoved = fmt.Errorf("the current read-model generation changed: %w", domain.ErrConflict)

// maxTransactItems is DynamoDB's limit of actions per TransactWriteItems.
const maxTransactItems = 100

// txKind says what a transaction action writes, to interpret its cancellation reason.
type txKind uint8

const (
	txSession txKind = iota
	txDoc
	txGuardedDoc
	txCounters
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
	// key identifies what the action writes, so that a transaction writes it once.
	key   string
	guard int64
	write types.TransactWriteItem
}

// rowKey names one row of a counters table.
type rowKey struct{ table, partition, sort string }

// group is one session's writes: its version-checked Put and everything its read models
// changed, which must land in the same transaction.
type group struct {
	items    []txItem
	counters map[rowKey]map[string]int64
}

// txPlan is what one transaction writes. Counters of one row are merged: a transaction
// may touch an item once.
type txPlan struct {
	items    []txItem
	counters map[rowKey]map[string]int64
	rows     []rowKey
}

func (p *txPlan) size() int { return len(p.items) + len(p.rows) }

// sizeWith is the plan's size once g is added.
func (p *txPlan) sizeWith(g *group) int {
	n := p.size() + len(g.items)
	for k := range g.counters {
		if _, ok := p.counters[k]; !ok {
			n++
		}
	}
	return n
}

func (p *txPlan) add(g *group) {
	p.items = append(p.items, g.items...)
	for k, cs := range g.counters {
		dst, ok := p.counters[k]
		if !ok {
			dst = map[string]int64{}
			p.counters[k] = dst
			p.rows = append(p.rows, k)
		}
		projections.AddCounters(dst, cs)
	}
}

// commitWriter renders a batch's actions for one generation's tables.
type commitWriter struct {
	s   *ReadModelStore
	gen int
	// building is the generation a rebuild is loading (0: none): each session the
	// commit changes is recorded for it (recordChange), and the generation check also
	// checks that it is still the one being built.
	building  int
	expiresAt int64
}

// Commit writes the batch: each session's Put under its version condition
// (attribute_not_exists(sessionId) for version 0, else version = :v) in the same
// transaction as every write its read models asked for — a document Put (under its
// guard condition when its table has one: attribute_not_exists(key) OR guard <= :g), a
// Delete, counters ADDed — so that a session's changes land exactly when it moves from
// version v to v+1, once: no later transaction can find it at v again. A redelivered
// event changes no session and writes nothing; a commit whose response was lost is
// recognised by its idempotency token (the SDK sets ClientRequestToken and its retries
// reuse it) or fails its version check, and the caller's reload finds the work done.
//
// A batch that fits in one TransactWriteItems (100 actions) is one transaction. A larger
// one is split into transactions of whole sessions, packed greedily, each summing its
// sessions' counter deltas per row, the checkpoint in the last: each transaction is
// exactly-once as above, but the batch is then not atomic — a conflict after some
// transactions committed returns domain.ErrConflict with those sessions stored, and the
// caller's reload-and-retry finds nothing left to do for them.
//
// Document writes that lose their guard are dropped and the rest retried, as the
// embedded store skips them; transaction conflicts and throttled actions are retried
// after a backoff; an action DynamoDB refuses as invalid (an item over 400 KB, say)
// fails the commit with an error matching domain.ErrInvalid, naming the session.
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
	w := &commitWriter{s: s, gen: gen, building: building, expiresAt: s.now().Add(s.cfg.TTL).Unix()}
	seen := make(map[string]bool, len(b.Sessions))
	groups := make([]group, 0, len(b.Sessions))
	for i := range b.Sessions {
		sc := &b.Sessions[i]
		if seen[sc.Session.ID] {
			// As the embedded backend: the second write finds the version moved.
			return &app.SessionConflict{SessionID: sc.Session.ID, Version: sc.Version}
		}
		seen[sc.Session.ID] = true
		g, err := w.group(sc)
		if err != nil {
			return err
		}
		groups = append(groups, g)
	}
	reserve := 0
	if s.gen == 0 {
		reserve++ // the generation check
	}
	if b.Checkpoint != nil {
		reserve++
	}
	capacity := maxTransactItems - reserve
	var plans []*txPlan
	cur := &txPlan{counters: map[rowKey]map[string]int64{}}
	for i := range groups {
		g := &groups[i]
		if len(g.items)+len(g.counters) > capacity {
			return fmt.Errorf("session %s alone needs %d actions, more than a transaction holds", b.Sessions[i].Session.ID, len(g.items)+len(g.counters))
		}
		if cur.sizeWith(g) > capacity {
			plans = append(plans, cur)
			cur = &txPlan{counters: map[rowKey]map[string]int64{}}
		}
		cur.add(g)
	}
	plans = append(plans, cur)

	for i, p := range plans {
		items, err := w.actions(p)
		if err != nil {
			return err
		}
		last := i == len(plans)-1
		if len(items) == 0 && !(last && b.Checkpoint != nil) {
			continue
		}
		if s.gen == 0 {
			check, err := w.generationCheck()
			if err != nil {
				return err
			}
			items = append(items, check)
		}
		if last && b.Checkpoint != nil {
			items = append(items, checkpointPut(s.cfg.TablesOf(1).Control, b.Checkpoint))
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

// group renders one session's writes.
func (w *commitWriter) group(sc *app.SessionChange) (group, error) {
	g := group{counters: map[rowKey]map[string]int64{}}
	item, err := w.sessionPut(&sc.SessionWrite)
	if err != nil {
		return g, err
	}
	g.items = append(g.items, item)
	if w.building > 0 {
		g.items = append(g.items, w.recordChange(sc.Session.ID))
	}
	for _, p := range sc.Changes.Puts {
		item, err := w.docPut(&p)
		if err != nil {
			return g, err
		}
		g.items = append(g.items, item)
	}
	for _, d := range sc.Changes.Deletes {
		item, err := w.docDelete(&d)
		if err != nil {
			return g, err
		}
		g.items = append(g.items, item)
	}
	for _, a := range sc.Changes.Adds {
		if _, ok := w.s.reg.Table(a.Table); !ok {
			return g, fmt.Errorf("table %s is not a registered read model's", a.Table)
		}
		k := rowKey{a.Table, a.Partition, a.Sort}
		cs, ok := g.counters[k]
		if !ok {
			cs = map[string]int64{}
			g.counters[k] = cs
		}
		projections.AddCounters(cs, a.Counters)
	}
	for k, cs := range g.counters {
		if len(cs) == 0 {
			delete(g.counters, k)
		}
	}
	return g, nil
}

// actions renders a plan's actions: one per written key — of several writes of one
// document the highest guard, the last of equal ones (what applying them in order under
// the guard leaves) — and one ADD per counters row.
func (w *commitWriter) actions(p *txPlan) ([]txItem, error) {
	out := make([]txItem, 0, p.size())
	pos := map[string]int{}
	for _, it := range p.items {
		if it.key == "" {
			out = append(out, it)
			continue
		}
		if i, ok := pos[it.key]; ok {
			if it.kind != txGuardedDoc || out[i].kind != txGuardedDoc || it.guard >= out[i].guard {
				out[i] = it
			}
			continue
		}
		pos[it.key] = len(out)
		out = append(out, it)
	}
	for _, k := range p.rows {
		if item, ok := w.countersAdd(k, p.counters[k]); ok {
			out = append(out, item)
		}
	}
	return out, nil
}

// transact runs one transaction. Document writes that lose their guard are dropped and
// the rest run again; conflicting or throttled actions are retried after a backoff; a
// failed session version or generation check is a conflict.
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
				case txGuardedDoc:
					// The stored document has a higher guard: leave it, as the guard means.
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
			case "ValidationError", "ItemCollectionSizeLimitExceeded":
				failed = &domain.FieldError{Field: items[i].what, Reason: "refused by DynamoDB: " + aws.ToString(r.Message)}
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
	table := w.s.cfg.TablesOf(w.gen).Sessions
	item := map[string]types.AttributeValue{attrSessionID: str(id), attrVersion: num(sw.Version + 1), attrSession: str(string(body))}
	return txItem{kind: txSession, what: "session " + id, sessionID: id, version: sw.Version,
		write: types.TransactWriteItem{Put: &types.Put{TableName: &table, Item: item, ConditionExpression: e.Condition(),
			ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}}}, nil
}

// docPut writes a document, under its guard when its table has one: it replaces only a
// document of equal or lower guard.
func (w *commitWriter) docPut(p *projections.Put) (txItem, error) {
	t, ok := w.s.reg.Table(p.Table)
	if !ok || t.Kind != projections.Documents {
		return txItem{}, fmt.Errorf("table %s is not a registered documents table", p.Table)
	}
	table := w.s.cfg.ReadModelTable(t.Name, w.gen)
	item, err := docItem(t, p.Key, p.Doc, p.Guard, p.Schedule, w.expiresAt, w.s.cfg.StuckShards)
	if err != nil {
		return txItem{}, err
	}
	out := txItem{kind: txDoc, what: t.Name + " " + p.Key, key: t.Name + "\x00" + p.Key,
		write: types.TransactWriteItem{Put: &types.Put{TableName: &table, Item: item}}}
	if t.Guard != "" {
		e, err := conditionOf(expression.Or(
			expression.AttributeNotExists(expression.Name(t.Key)),
			expression.Name(t.Guard).LessThanEqual(expression.Value(p.Guard))))
		if err != nil {
			return txItem{}, err
		}
		out.kind, out.guard = txGuardedDoc, p.Guard
		out.write.Put.ConditionExpression = e.Condition()
		out.write.Put.ExpressionAttributeNames, out.write.Put.ExpressionAttributeValues = e.Names(), e.Values()
	}
	return out, nil
}

// docDelete removes a document.
func (w *commitWriter) docDelete(d *projections.Delete) (txItem, error) {
	t, ok := w.s.reg.Table(d.Table)
	if !ok || t.Kind != projections.Documents {
		return txItem{}, fmt.Errorf("table %s is not a registered documents table", d.Table)
	}
	table := w.s.cfg.ReadModelTable(t.Name, w.gen)
	return txItem{kind: txDoc, what: t.Name + " " + d.Key, key: t.Name + "\x00" + d.Key,
		write: types.TransactWriteItem{Delete: &types.Delete{TableName: &table, Key: map[string]types.AttributeValue{t.Key: str(d.Key)}}}}, nil
}

// countersAdd adds counters to a row (ok false when every counter is zero).
//
// The ADD expression is written here rather than with the expression builder: counter
// names are attribute names such as "status.RUNNING" or "error.KeyError: 'x' [#]", and
// the builder reads '.' and "[n]" in a name as a document path even through
// NameNoDotSplit, while every name here goes through ExpressionAttributeNames verbatim.
func (w *commitWriter) countersAdd(k rowKey, cs map[string]int64) (txItem, bool) {
	t, _ := w.s.reg.Table(k.table)
	counters := make([]string, 0, len(cs))
	for c, v := range cs {
		if v != 0 {
			counters = append(counters, c)
		}
	}
	if len(counters) == 0 {
		return txItem{}, false
	}
	slices.Sort(counters)
	names := make(map[string]string, len(counters))
	values := make(map[string]types.AttributeValue, len(counters))
	parts := make([]string, len(counters))
	for i, c := range counters {
		n, v := "#c"+strconv.Itoa(i), ":c"+strconv.Itoa(i)
		names[n], values[v] = c, num(cs[c])
		parts[i] = n + " " + v
	}
	table := w.s.cfg.ReadModelTable(t.Name, w.gen)
	return txItem{kind: txCounters, what: t.Name + " " + k.partition + "/" + k.sort,
		write: types.TransactWriteItem{Update: &types.Update{
			TableName:                 &table,
			Key:                       map[string]types.AttributeValue{t.Partition: str(k.partition), t.Sort: str(k.sort)},
			UpdateExpression:          aws.String("ADD " + strings.Join(parts, ", ")),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: values,
		}}}, true
}

// checkpointPut stores a checkpoint in the control table.
func checkpointPut(control string, cp *app.Checkpoint) txItem {
	return txItem{kind: txCheckpoint, what: "checkpoint " + cp.Name, write: types.TransactWriteItem{Put: &types.Put{
		TableName: &control, Item: checkpointItem(cp.Name, cp.Position)}}}
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
	control := w.s.cfg.TablesOf(1).Control
	return txItem{kind: txGeneration, what: "current generation", write: types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
		TableName: &control, Key: controlKey(pkGeneration, skCurrent), ConditionExpression: e.Condition(),
		ExpressionAttributeNames: e.Names(), ExpressionAttributeValues: e.Values()}}}, nil
}

// recordChange counts a change of session id for the generation a rebuild is loading,
// which folds the session again from the journal into it (app.SessionRecorder).
func (w *commitWriter) recordChange(id string) txItem {
	control := w.s.cfg.TablesOf(1).Control
	return txItem{kind: txRecord, what: "rebuild record of session " + id, write: types.TransactWriteItem{Update: &types.Update{
		TableName: &control, Key: controlKey(rebuildPK(w.building), rebuildSK(id)),
		UpdateExpression:          aws.String("ADD #c :one"),
		ExpressionAttributeNames:  map[string]string{"#c": attrChanges},
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": num(1)}}}}
}
