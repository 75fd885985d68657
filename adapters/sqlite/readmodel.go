package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// ReadModelStore holds the read models of one generation, for whatever read models are
// registered: the session aggregates with their versions, and every registered table
// (tables.go). It knows nothing of what a read model means: it persists the changes
// the projector hands it (Commit) and answers the ports read models build their queries
// on (documents, counters, schedules). A rebuild fills a new generation next to the one
// serving and switches the current generation atomically; a store made for generation 0
// follows the current one.
//
// It is safe for concurrent use, also by several processes: every Commit is one write
// transaction guarded by session versions.
type ReadModelStore struct {
	db  *DB
	reg *projections.Registry
	gen int
}

var _ app.ReadModelStore = (*ReadModelStore)(nil)

// NewReadModelStore returns the read models of reg in generation gen, or in whatever
// generation is current when gen is 0. Readers of generation 0 may see a switch made by
// another process up to currentGenTTL late; a projector on generation 0 never mixes
// generations: Commit writes to the generation current inside its transaction and
// refuses session versions read from another one (domain.ErrConflict: reload, retry).
func NewReadModelStore(db *DB, reg *projections.Registry, gen int) *ReadModelStore {
	return &ReadModelStore{db: db, reg: reg, gen: gen}
}

const currentGenSQL = `SELECT gen FROM generations WHERE current = 1`

// currentGenTTL bounds how long a generation switch by another process goes unseen by
// reads. Commits never act on a stale generation: they check it inside their
// transaction (see Commit).
const currentGenTTL = 250 * time.Millisecond

// generation is the store's generation, or the current one (cached for
// currentGenTTL).
func (s *ReadModelStore) generation(ctx context.Context) (int, error) {
	if s.gen > 0 {
		return s.gen, nil
	}
	return s.db.currentGeneration(ctx)
}

func (db *DB) currentGeneration(ctx context.Context) (int, error) {
	db.curGenMu.Lock()
	defer db.curGenMu.Unlock()
	if db.curGen > 0 && time.Since(db.curGenAt) < currentGenTTL {
		return db.curGen, nil
	}
	st, err := db.stmt(ctx, db.read, currentGenSQL)
	if err != nil {
		return 0, err
	}
	var gen int
	if err := st.QueryRowContext(ctx).Scan(&gen); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return 0, fmt.Errorf("no current read-model generation: %w", domain.ErrNotFound)
		}
		return 0, fmt.Errorf("current read-model generation: %w", err)
	}
	db.curGen, db.curGenAt = gen, time.Now()
	return gen, nil
}

// movedOn returns err, or a conflict when the store follows the current generation and
// it is no longer gen: a rebuild switched generations (and may have dropped gen's
// tables, which is what err says) since the cache last looked. The caller's retry reads
// the new generation.
func (s *ReadModelStore) movedOn(ctx context.Context, gen int, err error) error {
	if s.gen > 0 {
		return err
	}
	s.db.setCurrentGeneration(0)
	cur, cerr := s.db.currentGeneration(ctx)
	if cerr != nil || cur == gen {
		return err
	}
	return fmt.Errorf("the current generation moved from %d to %d: %w", gen, cur, domain.ErrConflict)
}

// setCurrentGeneration updates the cache (gen 0: forget it).
func (db *DB) setCurrentGeneration(gen int) {
	db.curGenMu.Lock()
	db.curGen, db.curGenAt = gen, time.Now()
	db.curGenMu.Unlock()
}

// Versions handed out by LoadSessions carry the generation they were read from in their
// high 32 bits, so that a projector that loaded a session from one generation can
// never commit it into another (a store following the current generation across a
// switch): the version check fails and the projector reloads.
const versionGenShift = 32

func taggedVersion(gen int, stored int64) int64 { return int64(gen)<<versionGenShift | stored }

// storedVersion returns the stored version that v names in generation gen, or false when
// v was read from another generation.
func storedVersion(gen int, v int64) (int64, bool) {
	if v>>versionGenShift != int64(gen) {
		return 0, false
	}
	return v & (1<<versionGenShift - 1), true
}

// sql returns the SQL of the store's generation.
func (s *ReadModelStore) sql(ctx context.Context) (*genSQL, error) {
	gen, err := s.generation(ctx)
	if err != nil {
		return nil, err
	}
	return s.db.sqlOf(s.reg, gen), nil
}

// LoadSessions returns the stored sessions among ids with their versions. Sessions that
// are not stored are absent from the map (their zero VersionedSession, version 0, is
// what a new session starts from). Versions are opaque: they name the generation they
// were read from, too.
func (s *ReadModelStore) LoadSessions(ctx context.Context, ids []string) (map[string]app.VersionedSession, error) {
	out := make(map[string]app.VersionedSession, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	g, err := s.sql(ctx)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	idsJSON, err := json.Marshal(ids)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	st, err := s.db.stmt(ctx, s.db.read, g.loadSessions)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), s.movedOn(ctx, g.gen, err))
	}
	rows, err := st.QueryContext(ctx, idsJSON)
	if err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var vs app.VersionedSession
		var raw sql.RawBytes
		if err := rows.Scan(&id, &vs.Version, &raw); err != nil {
			return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
		}
		if err := decodeSession(raw, &vs.Session); err != nil {
			return nil, fmt.Errorf("load session %s: %w", id, err)
		}
		vs.Version = taggedVersion(g.gen, vs.Version)
		out[id] = vs
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("load %d sessions: %w", len(ids), err)
	}
	return out, nil
}
