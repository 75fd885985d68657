package sqlite

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// TestMigrateV2GivesEveryJournalRowItsRecord opens a file written by schema version 1
// (a journal with its extra fields in ev) and checks that the migrated journal scans
// and tails the same events, and takes new ones.
func TestMigrateV2GivesEveryJournalRowItsRecord(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	raw, err := sql.Open("sqlite", filepath.Join(dir, FileName))
	require.NoError(t, err)
	tx, err := raw.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `CREATE TABLE schema_version (version INTEGER NOT NULL)`)
	require.NoError(t, err)
	require.NoError(t, migrateV1(ctx, tx))
	_, err = tx.ExecContext(ctx, `INSERT INTO schema_version (version) VALUES (1)`)
	require.NoError(t, err)

	at := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	want := []domain.Event{
		{SessionID: "s-1", SK: "EVENT#2024-11-04T10:30:00.000Z", Status: domain.StatusSessionInitiated, Timestamp: at},
		fullEvent(t, true, false),
		{SessionID: "s-1", SK: "EVENT#2024-11-04T10:30:02.000Z", Status: domain.StatusInvocationFailed,
			Timestamp: at.Add(2 * time.Second), ErrorMessage: "Failed to invoke AgentCore: Timeout"},
	}
	for i := range want {
		ev := &want[i]
		var extra []byte // what version 1 wrote: NULL for key-only events
		if isExtra(ev) {
			extra = encodeEventExtra(nil, ev)
		}
		item := ev.Item()
		_, err := tx.ExecContext(ctx, `INSERT INTO journal (pk, sk, status, ts, item, ev) VALUES (?, ?, ?, ?, '{}', ?)`,
			item.PK, ev.SK, string(ev.Status), ev.Timestamp.UnixMilli(), extra)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
	require.NoError(t, raw.Close())

	db, err := Open(ctx, dir, nil)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	v, err := db.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, SchemaVersion, v)

	journal := NewJournalStore(db)
	more := domain.Event{SessionID: "s-2", SK: "EVENT#2024-11-04T10:31:00.000Z", Status: domain.StatusSessionInitiated, Timestamp: at.Add(time.Minute)}
	_, err = journal.Append(ctx, []domain.Event{more})
	require.NoError(t, err)
	want = append(want, more)

	var scanned []domain.Event
	require.NoError(t, journal.Scan(ctx, app.ScanOptions{}, func(b []domain.Event) error { scanned = append(scanned, b...); return nil }))
	rows, err := journal.ReadAfter(ctx, 0, 100)
	require.NoError(t, err)
	var tailed []domain.Event
	for i, r := range rows {
		assert.Equal(t, int64(i+1), r.Seq, "positions are kept, and continue")
		tailed = append(tailed, r.Event)
	}
	byKey := func(a, b domain.Event) int { return strings.Compare(a.SessionID+a.SK, b.SessionID+b.SK) }
	slices.SortFunc(want, byKey)
	slices.SortFunc(scanned, byKey)
	slices.SortFunc(tailed, byKey)
	wantItems := itemsOf(want)
	assert.Equal(t, wantItems, itemsOf(scanned))
	assert.Equal(t, wantItems, itemsOf(tailed))
}

func itemsOf(evs []domain.Event) []domain.JournalItem {
	out := make([]domain.JournalItem, len(evs))
	for i := range evs {
		out[i] = evs[i].Item()
	}
	return out
}
