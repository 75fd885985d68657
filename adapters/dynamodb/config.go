package dynamodb

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/projections"
)

// Defaults of Config.
const (
	DefaultTablePrefix       = "agentwatch"
	DefaultTTL               = 90 * 24 * time.Hour
	DefaultStuckShards       = 16
	DefaultScanSegments      = 4
	DefaultWriteConcurrency  = 16
	DefaultGenerationRefresh = 5 * time.Second
)

// Config configures the DynamoDB backend. The zero value plus SetDefaults is a working
// configuration.
type Config struct {
	// TablePrefix starts the name of every table agentwatch owns: "<prefix>-sessions",
	// "<prefix>-alerts", "<prefix>-control", "<prefix>-quarantine", and one per table of
	// every registered read model, named after it with '-' for '_'
	// ("<prefix>-executions", "<prefix>-agent-stats", "<prefix>-stuck", ...);
	// read-model tables of generation N > 1 end in "-g<N>". Default "agentwatch".
	TablePrefix string
	// JournalTable is the journal's table. Default "<prefix>-journal"; point it at the
	// table your agents already write (e.g. "agents-table-dev"): its key must be PK
	// (string) + SK (string), and Migrate enables its stream (NEW_IMAGE) if it has none.
	JournalTable string
	// TTL is how long execution-index items and stuck-detector entries live after
	// their last write before DynamoDB's TTL removes them (attribute "expiresAt", epoch
	// seconds). Default 90 days (seed 000). Sessions, stats, alerts and the journal never
	// expire.
	TTL time.Duration
	// StuckShards is the number of partitions of every index over a whole read-model
	// table — the stuck table's DueIndex — ("shard#0" … "shard#<n-1>", from a hash of
	// the key), so that such an index is read without a hot partition. Default 16.
	// Changing it strands documents in shards no longer queried: rebuild the read models
	// after a change.
	StuckShards int
	// ScanSegments is how many segments a journal scan (rebuild) reads in parallel.
	// Default 4.
	ScanSegments int
	// WriteConcurrency bounds the concurrent requests of one large journal append or
	// bulk load. Default 16.
	WriteConcurrency int
	// GenerationRefresh is how long a store that follows the current read-model
	// generation trusts the generation it last read before reading it again. Commits
	// never trust it: they check it inside their transaction. Default 5s.
	GenerationRefresh time.Duration
}

// SetDefaults fills zero fields.
func (c *Config) SetDefaults() {
	if c.TablePrefix == "" {
		c.TablePrefix = DefaultTablePrefix
	}
	if c.JournalTable == "" {
		c.JournalTable = c.TablePrefix + "-journal"
	}
	if c.TTL == 0 {
		c.TTL = DefaultTTL
	}
	if c.StuckShards == 0 {
		c.StuckShards = DefaultStuckShards
	}
	if c.ScanSegments == 0 {
		c.ScanSegments = DefaultScanSegments
	}
	if c.WriteConcurrency == 0 {
		c.WriteConcurrency = DefaultWriteConcurrency
	}
	if c.GenerationRefresh == 0 {
		c.GenerationRefresh = DefaultGenerationRefresh
	}
}

// tableNameRE is what DynamoDB accepts as a table name; prefixRE the characters of one.
var (
	tableNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{3,255}$`)
	prefixRE    = regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`)
)

// longestSuffix is the longest suffix agentwatch appends to the prefix: a read model's
// table name (at most 48 characters), with room for a generation number.
const longestSuffix = 1 + 48 + len("-g") + 10

// Validate checks the configuration (after SetDefaults), naming every bad field.
func (c *Config) Validate() error {
	var errs []error
	if !prefixRE.MatchString(c.TablePrefix) || len(c.TablePrefix)+longestSuffix > 255 {
		errs = append(errs, fmt.Errorf("TablePrefix %q: must be letters, digits, '_', '-' or '.', at most %d characters", c.TablePrefix, 255-longestSuffix))
	}
	if !tableNameRE.MatchString(c.JournalTable) {
		errs = append(errs, fmt.Errorf("JournalTable %q: must be 3-255 letters, digits, '_', '-' or '.'", c.JournalTable))
	}
	if c.TTL < time.Hour {
		errs = append(errs, fmt.Errorf("TTL %s: must be at least 1h", c.TTL))
	}
	if c.StuckShards < 1 || c.StuckShards > 1000 {
		errs = append(errs, fmt.Errorf("StuckShards %d: must be between 1 and 1000", c.StuckShards))
	}
	if c.ScanSegments < 1 || c.ScanSegments > 1_000_000 {
		errs = append(errs, fmt.Errorf("ScanSegments %d: must be between 1 and 1000000", c.ScanSegments))
	}
	if c.WriteConcurrency < 1 {
		errs = append(errs, fmt.Errorf("WriteConcurrency %d: must be at least 1", c.WriteConcurrency))
	}
	if c.GenerationRefresh < 0 {
		errs = append(errs, fmt.Errorf("GenerationRefresh %s: must not be negative", c.GenerationRefresh))
	}
	return errors.Join(errs...)
}

// Tables names the tables of one deployment, with the sessions table of one
// generation. The read models' own tables are named by ReadModelTable.
type Tables struct {
	// Journal is the session journal (PK, SK), with a stream.
	Journal string
	// Sessions holds the session aggregates and their versions (sessionId).
	Sessions string
	// Alerts is the alert outbox (sessionId, kind; PendingIndex, RaisedIndex).
	Alerts string
	// Control holds checkpoints, the current generation and leases (PK, SK).
	Control string
	// Quarantine keeps poison inputs (PK, SK).
	Quarantine string
}

// TablesOf names the tables of read-model generation gen (>= 1): generation 1 uses the
// base names, generation N > 1 the base names plus "-g<N>".
func (c *Config) TablesOf(gen int) Tables {
	p := c.TablePrefix
	return Tables{
		Journal:    c.JournalTable,
		Sessions:   generationName(p+"-sessions", gen),
		Alerts:     p + "-alerts",
		Control:    p + "-control",
		Quarantine: p + "-quarantine",
	}
}

// ReadModelTable names the DynamoDB table of a read model's table in generation gen:
// the prefix, '-', the table's name with '-' for '_' (so that "executions" is seed
// 000's table).
func (c *Config) ReadModelTable(name string, gen int) string {
	return generationName(c.TablePrefix+"-"+strings.ReplaceAll(name, "_", "-"), gen)
}

func generationName(base string, gen int) string {
	if gen <= 1 {
		return base
	}
	return fmt.Sprintf("%s-g%d", base, gen)
}

// TableRoles names every table of a deployment with the read models of reg, in
// generation gen, by role: "Journal", "Sessions", "Alerts", "Control", "Quarantine",
// and each read model's table by its name in CamelCase ("Executions", "AgentStats",
// "Stuck", ...). Deployment checks compare a template's tables with it.
func (c *Config) TableRoles(reg *projections.Registry, gen int) map[string]string {
	t := c.TablesOf(gen)
	out := map[string]string{"Journal": t.Journal, "Sessions": t.Sessions, "Alerts": t.Alerts, "Control": t.Control, "Quarantine": t.Quarantine}
	for _, rt := range reg.Tables() {
		role := ""
		for _, part := range strings.Split(rt.Name, "_") {
			if part != "" {
				role += strings.ToUpper(part[:1]) + part[1:]
			}
		}
		out[role] = c.ReadModelTable(rt.Name, gen)
	}
	return out
}
