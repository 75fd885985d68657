package projections

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/agentwatch/agentwatch/domain"
)

// The ports below are how read models read their tables back; every backend's read-model
// store implements them for any registered table. Each read model builds its own
// queries (its Reader) on top of them, so stores know nothing of what a read model
// means.

// DocumentReader reads documents tables.
type DocumentReader interface {
	// GetDocument returns the document of key; domain.ErrNotFound (wrapped) when there
	// is none.
	GetDocument(ctx context.Context, table, key string) (Row, error)
	// QueryIndex returns up to q.Limit documents of an index in (sort, key) order
	// (reversed when q.Descending), strictly after q.After, within [q.From, q.To] on the
	// sort attribute, that match q.Where.
	QueryIndex(ctx context.Context, q IndexQuery) ([]Row, error)
	// CountIndex counts the documents QueryIndex selects, without Limit and After.
	CountIndex(ctx context.Context, q IndexQuery) (int64, error)
	// ListDocuments returns up to limit documents whose keys follow after ("" from the
	// first), in key order.
	ListDocuments(ctx context.Context, table, after string, limit int) ([]Row, error)
}

// CounterReader reads counters tables.
type CounterReader interface {
	// ReadCounters returns the rows of partition (every partition when "") whose sort
	// key is within [from, to], sorted by partition and sort key. Rows with no counter
	// left are not returned.
	ReadCounters(ctx context.Context, table, partition, from, to string) ([]CounterRow, error)
}

// Scheduler moves the schedules of documents of a table with a schedule, as their
// owner (the stuck detector) decides.
type Scheduler interface {
	// Reschedule applies moves, each only if the document's schedule is still its Prev
	// (a move of a document that changed meanwhile is skipped), and reports how many it
	// applied.
	Reschedule(ctx context.Context, table string, moves []Move) (int, error)
}

// Move reschedules (or, with Delete, removes) one document.
type Move struct {
	Key        string
	Prev, Next int64
	Delete     bool
}

// IndexQuery selects documents through an index.
type IndexQuery struct {
	Table, Index string
	// Partition is the value of the index's partition attribute (nil for an index over
	// the whole table).
	Partition any
	// From and To bound the sort attribute, inclusive (nil: open).
	From, To any
	// After continues after a document already read (nil: from the first).
	After *Cursor
	// Where keeps documents whose attribute Attr is one of Values.
	Where []Filter
	// Descending reverses the order.
	Descending bool
	// Limit caps the documents returned (QueryIndex; > 0).
	Limit int
}

// Filter keeps documents whose attribute is one of values.
type Filter struct {
	Attr   string
	Values []any
}

// Cursor is a position in an index: a document's sort value and key.
type Cursor struct {
	Sort any    `json:"s"`
	Key  string `json:"k"`
}

// CursorOf is the position of row in the index sorted by attr of table.
func CursorOf(t *Table, row Row, sortAttr string) *Cursor {
	return &Cursor{Sort: SortValue(t, row, sortAttr), Key: row.Key}
}

// SortValue is the value of attribute attr of row (its schedule, for the schedule).
func SortValue(t *Table, row Row, attr string) any {
	if attr == t.Schedule {
		return row.Schedule
	}
	if a, ok := t.Attr(attr); ok {
		return a.Of(row.Doc)
	}
	return nil
}

// EncodeCursor makes a cursor opaque for clients.
func EncodeCursor(c *Cursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

// DecodeCursor reads a cursor EncodeCursor made, with a sort value of type typ;
// anything else is an error naming the field.
func DecodeCursor(s string, typ AttrType, field string) (*Cursor, error) {
	var raw struct {
		Sort json.RawMessage `json:"s"`
		Key  string          `json:"k"`
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err == nil {
		err = json.Unmarshal(b, &raw)
	}
	c := &Cursor{Key: raw.Key}
	if err == nil {
		if typ == Number {
			var n int64
			err = json.Unmarshal(raw.Sort, &n)
			c.Sort = n
		} else {
			var str string
			err = json.Unmarshal(raw.Sort, &str)
			c.Sort = str
		}
	}
	if err != nil || c.Key == "" {
		return nil, &domain.FieldError{Field: field, Reason: "is not a cursor this server returned"}
	}
	return c, nil
}

// CompareValues orders two attribute values of one type (strings or int64s).
func CompareValues(a, b any) int {
	switch x := a.(type) {
	case int64:
		y, _ := b.(int64)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		y, _ := b.(string)
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	}
	panic(fmt.Sprintf("projections: attribute value of type %T", a))
}
