package dynamodb

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/projections"
)

// Attribute and index names of the tables outside the read models (whose own come from
// their declarations). The journal keeps the names of seed 002.
const (
	attrPK = "PK"
	attrSK = "SK"

	attrExpiresAt = "expiresAt"

	attrSessionID = "sessionId"
	attrVersion   = "version"
	attrSession   = "session"

	attrKind       = "kind"
	attrPending    = "pending"
	attrAlertList  = "alertList"
	attrRaisedAtNs = "raisedAtNs"

	indexPending = "PendingIndex"
	indexRaised  = "RaisedIndex"
)

// keyAttr is one key attribute of a table or index.
type keyAttr struct {
	name string
	typ  types.ScalarAttributeType
}

// keyS and keyN name a string and a number key attribute.
func keyS(name string) keyAttr { return keyAttr{name: name, typ: types.ScalarAttributeTypeS} }
func keyN(name string) keyAttr { return keyAttr{name: name, typ: types.ScalarAttributeTypeN} }

// indexSpec is a global secondary index; every one projects ALL attributes, so that a
// query needs no second read.
type indexSpec struct {
	name       string
	hash, sort keyAttr
}

// tableSpec is what Migrate creates and checks for one table. Tables are created
// PAY_PER_REQUEST.
type tableSpec struct {
	name       string
	hash, sort keyAttr // sort.name "" for a hash key alone
	indexes    []indexSpec
	ttl        bool // expiresAt is the TTL attribute
	stream     bool // a stream with the new image
}

// journalSpec is the journal table (seed 002), with its stream.
func journalSpec(t Tables) tableSpec {
	return tableSpec{name: t.Journal, hash: keyS(attrPK), sort: keyS(attrSK), stream: true}
}

// sharedSpecs are the tables outside read-model generations.
func sharedSpecs(t Tables) []tableSpec {
	return []tableSpec{
		journalSpec(t),
		{name: t.Alerts, hash: keyS(attrSessionID), sort: keyS(attrKind), indexes: []indexSpec{
			// Sparse: only pending alerts carry "pending".
			{name: indexPending, hash: keyS(attrPending), sort: keyN(attrRaisedAtNs)},
			// Every alert carries alertList = "ALERT": listing newest first without a
			// scan. Alerts are rare (one per session and kind, ever), so the single
			// partition is not hot.
			{name: indexRaised, hash: keyS(attrAlertList), sort: keyN(attrRaisedAtNs)},
		}},
		{name: t.Control, hash: keyS(attrPK), sort: keyS(attrSK)},
		{name: t.Quarantine, hash: keyS(attrPK), sort: keyS(attrSK)},
	}
}

// generationSpecs are the tables of one generation: the sessions, and every table of
// every registered read model.
func generationSpecs(cfg *Config, reg *projections.Registry, gen int) []tableSpec {
	out := []tableSpec{{name: cfg.TablesOf(gen).Sessions, hash: keyS(attrSessionID)}}
	for _, t := range reg.Tables() {
		out = append(out, readModelSpec(cfg, &t, gen))
	}
	return out
}

// readModelSpec is the DynamoDB table of a read model's table: a documents table keyed
// by its key attribute, with a GSI per index (an index over the whole table is
// partitioned by its shard attribute) and TTL when it asks for expiry; a counters table
// keyed by partition and sort key.
func readModelSpec(cfg *Config, t *projections.Table, gen int) tableSpec {
	spec := tableSpec{name: cfg.ReadModelTable(t.Name, gen)}
	if t.Kind == projections.Counters {
		spec.hash, spec.sort = keyS(t.Partition), keyS(t.Sort)
		return spec
	}
	spec.hash, spec.ttl = keyS(t.Key), t.Expires
	attr := func(name string) keyAttr {
		if name == t.Schedule || name == t.Guard {
			return keyN(name)
		}
		if a, ok := t.Attr(name); ok && a.Type == projections.Number {
			return keyN(name)
		}
		return keyS(name)
	}
	for _, ix := range t.Indexes {
		is := indexSpec{name: ix.Name, sort: attr(ix.Sort)}
		if ix.Partition != "" {
			is.hash = attr(ix.Partition)
		} else {
			is.hash = keyS(ix.ShardAttrOf())
		}
		spec.indexes = append(spec.indexes, is)
	}
	return spec
}

// keySchema renders a key.
func keySchema(hash, sort keyAttr) []types.KeySchemaElement {
	ks := []types.KeySchemaElement{{AttributeName: &hash.name, KeyType: types.KeyTypeHash}}
	if sort.name != "" {
		ks = append(ks, types.KeySchemaElement{AttributeName: &sort.name, KeyType: types.KeyTypeRange})
	}
	return ks
}

// attributeDefinitions lists the key attributes of the table and its indexes, once each.
func (s *tableSpec) attributeDefinitions() []types.AttributeDefinition {
	var defs []types.AttributeDefinition
	seen := map[string]bool{}
	add := func(k keyAttr) {
		if k.name == "" || seen[k.name] {
			return
		}
		seen[k.name] = true
		defs = append(defs, types.AttributeDefinition{AttributeName: &k.name, AttributeType: k.typ})
	}
	add(s.hash)
	add(s.sort)
	for _, ix := range s.indexes {
		add(ix.hash)
		add(ix.sort)
	}
	return defs
}

// gsi renders an index for CreateTable or UpdateTable.
func (ix *indexSpec) gsi() types.GlobalSecondaryIndex {
	return types.GlobalSecondaryIndex{
		IndexName:  &ix.name,
		KeySchema:  keySchema(ix.hash, ix.sort),
		Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
	}
}
