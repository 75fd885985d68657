package dynamodb

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// ReadModelStore holds the read models of one generation, for whatever read models are
// registered: the session aggregates with their versions (the sessions table), and a
// table per table of every read model (schema.go). It knows nothing of what a read
// model means: it persists the changes the projector hands it (Commit) and answers the
// ports read models build their queries on (documents, counters, schedules). A rebuild
// fills a new generation next to the one serving and switches the current generation
// atomically (SwitchGeneration); a store made for generation 0 follows the current one.
//
// It is safe for concurrent use, also by several processes: every Commit is guarded by
// session versions inside DynamoDB transactions.
type ReadModelStore struct {
	client *dynamodb.Client
	cfg    Config
	reg    *projections.Registry
	gen    int
	logger *slog.Logger
	now    func() time.Time

	mu          sync.Mutex
	curGen      int
	curBuilding int // the generation a rebuild is loading, as of curAt
	curAt       time.Time
}

var _ app.ReadModelStore = (*ReadModelStore)(nil)

// NewReadModelStore returns the read models of reg in generation gen, or in whatever
// generation is current when gen is 0 (it re-reads the current generation after
// cfg.GenerationRefresh, and its commits check it inside the transaction).
func NewReadModelStore(client *dynamodb.Client, cfg Config, reg *projections.Registry, gen int, logger *slog.Logger) (*ReadModelStore, error) {
	cfg, err := prepare(cfg)
	if err != nil {
		return nil, err
	}
	if gen < 0 {
		return nil, fmt.Errorf("read-model store: generation %d: must be 0 (current) or >= 1", gen)
	}
	if reg == nil {
		return nil, fmt.Errorf("read-model store: no read models registered")
	}
	return &ReadModelStore{client: client, cfg: cfg, reg: reg, gen: gen, logger: orDiscard(logger), now: time.Now}, nil
}

// prepare applies defaults to a copy of cfg and validates it.
func prepare(cfg Config) (Config, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("dynamodb config: %w", err)
	}
	return cfg, nil
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// Generation is the store's generation, or the current one (cached for
// GenerationRefresh) for a store that follows it.
func (s *ReadModelStore) Generation(ctx context.Context) (int, error) {
	gen, _, err := s.generationState(ctx)
	return gen, err
}

// generationState is Generation and, for a store that follows the current generation,
// the generation a rebuild is loading (0: none), read together.
func (s *ReadModelStore) generationState(ctx context.Context) (gen, building int, err error) {
	if s.gen > 0 {
		return s.gen, 0, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.curGen > 0 && time.Since(s.curAt) < s.cfg.GenerationRefresh {
		return s.curGen, s.curBuilding, nil
	}
	gen, building, err = readGenerationState(ctx, s.client, s.cfg.TablesOf(1).Control)
	if err != nil {
		return 0, 0, err
	}
	if building != s.curBuilding {
		if building > 0 {
			s.logger.Info("a rebuild is loading a read-model generation: commits record the sessions they change for it",
				"generation", building, "serving", gen)
		} else {
			s.logger.Info("no rebuild is loading a read-model generation: commits stopped recording", "serving", gen)
		}
	}
	s.curGen, s.curBuilding, s.curAt = gen, building, time.Now()
	return gen, building, nil
}

// forgetGeneration drops the cached current generation.
func (s *ReadModelStore) forgetGeneration() {
	s.mu.Lock()
	s.curGen = 0
	s.mu.Unlock()
}

// tables names the tables of the store's generation.
func (s *ReadModelStore) tables(ctx context.Context) (Tables, int, error) {
	gen, err := s.Generation(ctx)
	if err != nil {
		return Tables{}, 0, err
	}
	return s.cfg.TablesOf(gen), gen, nil
}

// tableOf returns a registered table's declaration and its DynamoDB name in the store's
// generation.
func (s *ReadModelStore) tableOf(ctx context.Context, name string) (*projections.Table, string, error) {
	t, ok := s.reg.Table(name)
	if !ok {
		return nil, "", fmt.Errorf("table %s is not a registered read model's", name)
	}
	gen, err := s.Generation(ctx)
	if err != nil {
		return nil, "", err
	}
	return t, s.cfg.ReadModelTable(name, gen), nil
}

// LoadSessions returns the stored sessions among ids with their versions (consistent
// reads, BatchGetItem). Sessions that are not stored are absent from the map.
func (s *ReadModelStore) LoadSessions(ctx context.Context, ids []string) (map[string]app.VersionedSession, error) {
	out := make(map[string]app.VersionedSession, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	t, _, err := s.tables(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	if err := loadSessions(ctx, s.client, t.Sessions, ids, out); err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	return out, nil
}

func loadSessions(ctx context.Context, client *dynamodb.Client, table string, ids []string, into map[string]app.VersionedSession) error {
	seen := make(map[string]bool, len(ids))
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			keys = append(keys, map[string]types.AttributeValue{attrSessionID: str(id)})
		}
	}
	return batchGet(ctx, client, table, keys, func(item map[string]types.AttributeValue) error {
		id := stringOf(item, attrSessionID)
		vs, err := decodeSession(item)
		if err != nil {
			return fmt.Errorf("session %s: %w", id, err)
		}
		into[id] = vs
		return nil
	})
}

// decodeSession reads a session item: its version and the aggregate, stored as JSON
// (compact, and the same encoding as the embedded backend's).
func decodeSession(item map[string]types.AttributeValue) (app.VersionedSession, error) {
	var vs app.VersionedSession
	v, ok := numberOf(item, attrVersion)
	if !ok {
		return vs, fmt.Errorf("decode stored session: no version")
	}
	vs.Version = v
	if err := json.Unmarshal([]byte(stringOf(item, attrSession)), &vs.Session); err != nil {
		return vs, fmt.Errorf("decode stored session: %w", err)
	}
	return vs, nil
}
