package projections

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
)

// Kind is what a table holds.
type Kind int

// Table kinds.
const (
	// Documents: one document per key, written whole (Put) or removed (Delete), read by
	// key or through an index.
	Documents Kind = iota
	// Counters: rows of named integer counters, keyed by a partition and a sort key,
	// only ever incremented (Add); a counter back at zero is gone.
	Counters
)

// AttrType is the type of an attribute that stores index or filter on.
type AttrType int

// Attribute types.
const (
	String AttrType = iota
	Number
)

// Attr is an attribute of a document that stores keep beside it, to index, filter or
// sort on. The document keeps it too.
type Attr struct {
	// Name is the attribute's name in the document's JSON (and DynamoDB item).
	Name string
	Type AttrType
	// Of reads the attribute from a document: a string (String; "" when absent) or an
	// int64 (Number).
	Of func(doc any) any
}

// Index is a secondary index of a documents table, in (Sort, Key) order.
type Index struct {
	// Name is the index's name (a DynamoDB GSI's).
	Name string
	// Partition is the attribute an index query fixes; "" for an index over the whole
	// table (DynamoDB spreads it over a few shard partitions).
	Partition string
	// Sort is the attribute the index orders by: one of the table's Attrs, or its
	// Schedule. Documents whose sort attribute is absent ("", or Never for a schedule)
	// are not in the index.
	Sort string
	// ShardAttr names the attribute that holds a document's shard in an index over the
	// whole table (DynamoDB). Default: the index's name, lower-cased first letter, plus
	// "Shard".
	ShardAttr string
}

// Codec encodes a table's documents compactly for stores that keep them as bytes.
type Codec interface {
	// Encode appends doc's encoding to b.
	Encode(b []byte, doc any) []byte
	// Decode fills doc (from Table.New) from what Encode wrote.
	Decode(b []byte, doc any) error
}

// Table declares a table of a read model.
type Table struct {
	// Name is the table's name: unique across read models, lower case letters, digits
	// and '_'. Stores derive their table names from it.
	Name string
	Kind Kind

	// Key is the name of the attribute that identifies a document (documents tables).
	Key string
	// Attrs are the attributes stores keep beside documents.
	Attrs []Attr
	// Indexes are the secondary indexes.
	Indexes []Index
	// Guard, when set, names the attribute holding each document's write guard
	// (Put.Guard).
	Guard string
	// Schedule, when set, names the attribute holding each document's schedule
	// (Put.Schedule), which its owner moves with a compare-and-set.
	Schedule string
	// Expires asks stores that can for an expiry of documents some time after their
	// last write (DynamoDB's TTL).
	Expires bool
	// New returns a new, empty document to decode into (a pointer).
	New func() any
	// Codec encodes documents for stores that keep bytes; nil: JSON.
	Codec Codec

	// Partition and Sort name the key attributes of a counters table's rows.
	Partition, Sort string
}

var (
	nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,47}$`)
	attrRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,63}$`)
)

// Validate checks the declaration.
func (t *Table) Validate() error {
	var errs []error
	if !nameRE.MatchString(t.Name) {
		errs = append(errs, fmt.Errorf("table %q: name must be lower case letters, digits and '_', at most 48", t.Name))
	}
	switch t.Kind {
	case Documents:
		if t.Key == "" || t.New == nil {
			errs = append(errs, fmt.Errorf("table %s: a documents table needs Key and New", t.Name))
		}
		names := map[string]bool{t.Key: true}
		for _, n := range []string{t.Key, t.Guard, t.Schedule} {
			if n != "" && !attrRE.MatchString(n) {
				errs = append(errs, fmt.Errorf("table %s: attribute %q: letters, digits and '_'", t.Name, n))
			}
		}
		for _, a := range t.Attrs {
			if !attrRE.MatchString(a.Name) || a.Of == nil || names[a.Name] {
				errs = append(errs, fmt.Errorf("table %s: attribute %q: needs a unique name and Of", t.Name, a.Name))
			}
			names[a.Name] = true
		}
		for _, n := range []string{t.Guard, t.Schedule} {
			if n != "" && names[n] {
				errs = append(errs, fmt.Errorf("table %s: %q names two attributes", t.Name, n))
			}
			if n != "" {
				names[n] = true
			}
		}
		for _, ix := range t.Indexes {
			if ix.Name == "" || !names[ix.Sort] || ix.Sort == t.Key || (ix.Partition != "" && !names[ix.Partition]) {
				errs = append(errs, fmt.Errorf("table %s: index %q: its partition and sort must be declared attributes", t.Name, ix.Name))
			}
		}
	case Counters:
		if !attrRE.MatchString(t.Partition) || !attrRE.MatchString(t.Sort) {
			errs = append(errs, fmt.Errorf("table %s: a counters table needs Partition and Sort", t.Name))
		}
	default:
		errs = append(errs, fmt.Errorf("table %s: unknown kind %d", t.Name, t.Kind))
	}
	return errors.Join(errs...)
}

// Attr returns the declared attribute called name.
func (t *Table) Attr(name string) (Attr, bool) {
	i := slices.IndexFunc(t.Attrs, func(a Attr) bool { return a.Name == name })
	if i < 0 {
		return Attr{}, false
	}
	return t.Attrs[i], true
}

// Index returns the index called name.
func (t *Table) Index(name string) (Index, bool) {
	i := slices.IndexFunc(t.Indexes, func(x Index) bool { return x.Name == name })
	if i < 0 {
		return Index{}, false
	}
	return t.Indexes[i], true
}

// ShardAttrOf is the attribute holding a document's shard in ix (an index over the whole
// table).
func (ix *Index) ShardAttrOf() string {
	if ix.ShardAttr != "" {
		return ix.ShardAttr
	}
	b := []byte(ix.Name)
	if len(b) > 0 && b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b) + "Shard"
}

// EncodeDoc encodes doc with the table's codec, or as JSON.
func (t *Table) EncodeDoc(b []byte, doc any) ([]byte, error) {
	if t.Codec != nil {
		return t.Codec.Encode(b, doc), nil
	}
	j, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode %s document: %w", t.Name, err)
	}
	return append(b, j...), nil
}

// DecodeDoc decodes what EncodeDoc wrote into a new document.
func (t *Table) DecodeDoc(b []byte) (any, error) {
	doc := t.New()
	var err error
	if t.Codec != nil {
		err = t.Codec.Decode(b, doc)
	} else {
		err = json.Unmarshal(b, doc)
	}
	if err != nil {
		return nil, fmt.Errorf("decode %s document: %w", t.Name, err)
	}
	return doc, nil
}
