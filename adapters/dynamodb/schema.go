package dynamodb

import (
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Attribute and index names. The execution index keeps the names of seed 000; the
// journal those of seed 002.
const (
	attrPK = "PK"
	attrSK = "SK"

	attrExecutionArn = "executionArn"
	attrAgentName    = "agentName"
	attrStatus       = "status"
	attrStartDate    = "startDate"
	attrRank         = "rank"
	attrExpiresAt    = "expiresAt"

	attrSessionID = "sessionId"
	attrVersion   = "version"
	attrSession   = "session"

	attrBucket = "bucket"

	attrDueShard    = "dueShard"
	attrNextCheckMs = "nextCheckMs"

	attrKind       = "kind"
	attrPending    = "pending"
	attrAlertList  = "alertList"
	attrRaisedAtNs = "raisedAtNs"

	indexAgentDate  = "AgentDateIndex"
	indexStatusDate = "StatusDateIndex"
	indexDue        = "DueIndex"
	indexPending    = "PendingIndex"
	indexRaised     = "RaisedIndex"
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

// generationSpecs are the read-model tables of one generation.
func generationSpecs(t Tables) []tableSpec {
	return []tableSpec{
		{name: t.Executions, hash: keyS(attrExecutionArn), ttl: true, indexes: []indexSpec{
			{name: indexAgentDate, hash: keyS(attrAgentName), sort: keyS(attrStartDate)},
			{name: indexStatusDate, hash: keyS(attrStatus), sort: keyS(attrStartDate)},
		}},
		{name: t.Sessions, hash: keyS(attrSessionID)},
		{name: t.AgentStats, hash: keyS(attrAgentName), sort: keyS(attrBucket)},
		{name: t.Stuck, hash: keyS(attrSessionID), ttl: true, indexes: []indexSpec{
			// Sparse: entries with nothing to wait for (next check Never) carry no shard.
			{name: indexDue, hash: keyS(attrDueShard), sort: keyN(attrNextCheckMs)},
		}},
	}
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
