package dynamodb

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/projections"
)

// maxTableWait bounds how long Migrate waits for one table or index to become active.
const maxTableWait = 10 * time.Minute

// Report says what Migrate did: what it created or enabled, and what was already there.
type Report struct {
	// Created lists what Migrate created or enabled, e.g. "table agentwatch-journal",
	// "index DueIndex on agentwatch-stuck", "stream (NEW_IMAGE) on agents-table-dev".
	Created []string `json:"created"`
	// Existing lists what was already there as it should be.
	Existing []string `json:"existing"`
	// Generation is the current read-model generation, whose tables Migrate checked.
	Generation int `json:"generation"`
}

// String renders the report one line per item.
func (r Report) String() string {
	var b strings.Builder
	for _, s := range r.Created {
		fmt.Fprintf(&b, "created   %s\n", s)
	}
	for _, s := range r.Existing {
		fmt.Fprintf(&b, "existing  %s\n", s)
	}
	fmt.Fprintf(&b, "current read-model generation: %d\n", r.Generation)
	return b.String()
}

// ErrSchemaMismatch marks a table or index that exists with another key schema, stream
// view or TTL attribute than agentwatch needs: Migrate never alters keys, so a person
// must decide (rename the table prefix, or drop the table).
var ErrSchemaMismatch = errors.New("schema mismatch")

// Migrate creates what is missing and checks what exists, for the tables of cfg: the
// journal (key PK+SK; its stream is enabled with NEW_IMAGE if the table has none —
// e.g. an agents table that predates agentwatch), the alert outbox, control and
// quarantine tables, and the tables of the current generation for the registered read
// models (generation 1 is made current on first run), with every GSI (added to an
// existing table when a read model declares a new index), TTL attribute (expiresAt) and
// stream.
// New tables are PAY_PER_REQUEST. Migrate waits until what it created is active (the
// SDK's TableExistsWaiter) and is idempotent: a second run creates nothing.
//
// Key schemas that differ from agentwatch's are reported as errors matching
// ErrSchemaMismatch (joined, after everything else was checked); the Report is
// returned in every case.
func Migrate(ctx context.Context, client *dynamodb.Client, cfg Config, reg *projections.Registry, logger *slog.Logger) (Report, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return Report{}, fmt.Errorf("migrate: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &migrator{client: client, logger: logger}
	base := cfg.TablesOf(1)
	var errs []error
	for _, spec := range sharedSpecs(base) {
		if err := m.ensureTable(ctx, spec); err != nil {
			if !errors.Is(err, ErrSchemaMismatch) {
				return m.report, fmt.Errorf("migrate: %w", err)
			}
			errs = append(errs, err)
		}
	}
	gen, created, err := ensureCurrentGeneration(ctx, client, base.Control, reg.Signature())
	if err != nil {
		return m.report, fmt.Errorf("migrate: %w", errors.Join(append(errs, err)...))
	}
	m.report.Generation = gen
	if created {
		m.report.Created = append(m.report.Created, fmt.Sprintf("read-model generation %d (current) in %s", gen, base.Control))
	}
	for _, spec := range generationSpecs(&cfg, reg, gen) {
		if err := m.ensureTable(ctx, spec); err != nil {
			if !errors.Is(err, ErrSchemaMismatch) {
				return m.report, fmt.Errorf("migrate: %w", err)
			}
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return m.report, fmt.Errorf("migrate: %w", err)
	}
	return m.report, nil
}

// migrator creates and checks tables, recording what it did.
type migrator struct {
	client *dynamodb.Client
	logger *slog.Logger
	report Report
}

func (m *migrator) created(what string) {
	m.report.Created = append(m.report.Created, what)
	m.logger.Info("dynamodb migrate: created", "what", what)
}

func (m *migrator) existing(what string) { m.report.Existing = append(m.report.Existing, what) }

// ensureTable creates the table of spec if it is missing, then checks and completes
// it: key schema, indexes, stream, TTL. A mismatch is an error matching
// ErrSchemaMismatch, returned after the rest was checked.
func (m *migrator) ensureTable(ctx context.Context, spec tableSpec) error {
	desc, err := m.client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &spec.name})
	switch {
	case isTableMissing(err):
		if desc, err = m.createTable(ctx, spec); err != nil {
			return err
		}
	case err != nil:
		return fmt.Errorf("describe table %s: %w", spec.name, err)
	default:
		m.existing("table " + spec.name)
		if desc.Table.TableStatus != types.TableStatusActive {
			if desc, err = m.waitActive(ctx, spec.name); err != nil {
				return err
			}
		}
	}
	var mismatches []error
	if err := checkKeys("table "+spec.name, desc.Table.KeySchema, desc.Table.AttributeDefinitions, spec.hash, spec.sort); err != nil {
		mismatches = append(mismatches, err)
	}
	for _, ix := range spec.indexes {
		if err := m.ensureIndex(ctx, spec, ix, desc.Table); err != nil {
			if !errors.Is(err, ErrSchemaMismatch) {
				return err
			}
			mismatches = append(mismatches, err)
		}
	}
	if spec.stream {
		if err := m.ensureStream(ctx, spec.name, desc.Table.StreamSpecification); err != nil {
			if !errors.Is(err, ErrSchemaMismatch) {
				return err
			}
			mismatches = append(mismatches, err)
		}
	}
	if spec.ttl {
		if err := m.ensureTTL(ctx, spec.name); err != nil {
			if !errors.Is(err, ErrSchemaMismatch) {
				return err
			}
			mismatches = append(mismatches, err)
		}
	}
	return errors.Join(mismatches...)
}

func (m *migrator) createTable(ctx context.Context, spec tableSpec) (*dynamodb.DescribeTableOutput, error) {
	in := &dynamodb.CreateTableInput{
		TableName:            &spec.name,
		KeySchema:            keySchema(spec.hash, spec.sort),
		AttributeDefinitions: spec.attributeDefinitions(),
		BillingMode:          types.BillingModePayPerRequest,
	}
	for _, ix := range spec.indexes {
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, ix.gsi())
	}
	if spec.stream {
		in.StreamSpecification = &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage}
	}
	_, err := m.client.CreateTable(ctx, in)
	var inUse *types.ResourceInUseException
	switch {
	case errors.As(err, &inUse):
		// Created meanwhile by another migrate: check it like any existing table.
		m.existing("table " + spec.name)
	case err != nil:
		return nil, fmt.Errorf("create table %s: %w", spec.name, err)
	default:
		m.created("table " + spec.name)
		for _, ix := range spec.indexes {
			m.created(fmt.Sprintf("index %s on %s", ix.name, spec.name))
		}
		if spec.stream {
			m.created("stream (NEW_IMAGE) on " + spec.name)
		}
	}
	return m.waitActive(ctx, spec.name)
}

// waitActive waits with the SDK's TableExistsWaiter until the table and all its
// indexes are active, and returns the last description.
func (m *migrator) waitActive(ctx context.Context, table string) (*dynamodb.DescribeTableOutput, error) {
	w := dynamodb.NewTableExistsWaiter(m.client, func(o *dynamodb.TableExistsWaiterOptions) {
		o.MinDelay, o.MaxDelay = time.Second, 10*time.Second
		o.Retryable = func(_ context.Context, _ *dynamodb.DescribeTableInput, out *dynamodb.DescribeTableOutput, err error) (bool, error) {
			if err != nil {
				if isTableMissing(err) {
					return true, nil
				}
				return false, err
			}
			if out.Table == nil || out.Table.TableStatus != types.TableStatusActive {
				return true, nil
			}
			for _, ix := range out.Table.GlobalSecondaryIndexes {
				if ix.IndexStatus != types.IndexStatusActive {
					return true, nil
				}
			}
			return false, nil
		}
	})
	out, err := w.WaitForOutput(ctx, &dynamodb.DescribeTableInput{TableName: &table}, maxTableWait)
	if err != nil {
		return nil, fmt.Errorf("wait for table %s: %w", table, err)
	}
	return out, nil
}

// checkKeys compares a key schema with the expected one.
func checkKeys(what string, ks []types.KeySchemaElement, defs []types.AttributeDefinition, hash, sort keyAttr) error {
	typeOf := map[string]types.ScalarAttributeType{}
	for _, d := range defs {
		typeOf[aws.ToString(d.AttributeName)] = d.AttributeType
	}
	render := func(ks []types.KeySchemaElement) string {
		var parts []string
		for _, k := range ks {
			name := aws.ToString(k.AttributeName)
			parts = append(parts, fmt.Sprintf("%s %s (%s)", k.KeyType, name, typeOf[name]))
		}
		return strings.Join(parts, ", ")
	}
	want := keySchema(hash, sort)
	ok := len(ks) == len(want)
	for i := 0; ok && i < len(ks); i++ {
		k := aws.ToString(ks[i].AttributeName)
		exp := hash
		if ks[i].KeyType == types.KeyTypeRange {
			exp = sort
		}
		ok = k == exp.name && typeOf[k] == exp.typ
	}
	if !ok {
		typeOf[hash.name], typeOf[sort.name] = hash.typ, sort.typ
		return fmt.Errorf("%s: key is %s, agentwatch needs %s: %w", what, render(ks), render(want), ErrSchemaMismatch)
	}
	return nil
}

func (m *migrator) ensureIndex(ctx context.Context, spec tableSpec, ix indexSpec, table *types.TableDescription) error {
	what := fmt.Sprintf("index %s on %s", ix.name, spec.name)
	for _, have := range table.GlobalSecondaryIndexes {
		if aws.ToString(have.IndexName) != ix.name {
			continue
		}
		if !m.isCreated(what) {
			m.existing(what)
		}
		if err := checkKeys(what, have.KeySchema, table.AttributeDefinitions, ix.hash, ix.sort); err != nil {
			return err
		}
		if have.Projection == nil || have.Projection.ProjectionType != types.ProjectionTypeAll {
			return fmt.Errorf("%s: must project ALL attributes: %w", what, ErrSchemaMismatch)
		}
		return nil
	}
	_, err := m.client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:            &spec.name,
		AttributeDefinitions: spec.attributeDefinitions(),
		GlobalSecondaryIndexUpdates: []types.GlobalSecondaryIndexUpdate{{Create: &types.CreateGlobalSecondaryIndexAction{
			IndexName: &ix.name, KeySchema: keySchema(ix.hash, ix.sort),
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}}},
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", what, err)
	}
	m.created(what)
	_, err = m.waitActive(ctx, spec.name)
	return err
}

func (m *migrator) isCreated(what string) bool {
	for _, c := range m.report.Created {
		if c == what {
			return true
		}
	}
	return false
}

func (m *migrator) ensureStream(ctx context.Context, table string, ss *types.StreamSpecification) error {
	what := "stream (NEW_IMAGE) on " + table
	if ss != nil && aws.ToBool(ss.StreamEnabled) {
		switch ss.StreamViewType {
		case types.StreamViewTypeNewImage, types.StreamViewTypeNewAndOldImages:
			if !m.isCreated(what) {
				m.existing(fmt.Sprintf("stream (%s) on %s", ss.StreamViewType, table))
			}
			return nil
		}
		return fmt.Errorf("stream on %s has view type %s, agentwatch needs NEW_IMAGE or NEW_AND_OLD_IMAGES: %w",
			table, ss.StreamViewType, ErrSchemaMismatch)
	}
	_, err := m.client.UpdateTable(ctx, &dynamodb.UpdateTableInput{
		TableName:           &table,
		StreamSpecification: &types.StreamSpecification{StreamEnabled: aws.Bool(true), StreamViewType: types.StreamViewTypeNewImage},
	})
	if err != nil {
		return fmt.Errorf("enable stream on %s: %w", table, err)
	}
	m.created(what)
	_, err = m.waitActive(ctx, table)
	return err
}

func (m *migrator) ensureTTL(ctx context.Context, table string) error {
	what := "TTL on attribute " + attrExpiresAt + " of " + table
	out, err := m.client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return fmt.Errorf("describe TTL of %s: %w", table, err)
	}
	if d := out.TimeToLiveDescription; d != nil {
		switch d.TimeToLiveStatus {
		case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
			if name := aws.ToString(d.AttributeName); name != attrExpiresAt {
				return fmt.Errorf("%s: TTL is on attribute %s: %w", what, name, ErrSchemaMismatch)
			}
			m.existing(what)
			return nil
		case types.TimeToLiveStatusDisabling:
			return fmt.Errorf("%s: TTL is being disabled; run migrate again when it is: %w", what, ErrSchemaMismatch)
		}
	}
	_, err = m.client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(attrExpiresAt), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable %s: %w", what, err)
	}
	m.created(what)
	return nil
}
