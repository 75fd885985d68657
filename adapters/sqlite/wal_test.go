package sqlite

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

// TestWALStaysBoundedUnderWritesWithReadersOpen: writers append without pause while
// readers keep read transactions open one after another, so that a PASSIVE checkpoint
// never finds the WAL free to start over; the checkpointer's TRUNCATE at the size limit
// keeps the WAL near that limit, and emptying it once writes stop.
func TestWALStaysBoundedUnderWritesWithReadersOpen(t *testing.T) {
	db, err := Open(t.Context(), t.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	const limit = 1 << 20
	db.walLimit = limit

	ctx, cancel := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	// Eight readers hammering the file, as clients polling the API would: each query
	// holds a snapshot; there is always one open.
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				var n int
				_ = db.read.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM journal ORDER BY seq DESC LIMIT 200)`).Scan(&n)
			}
		})
	}
	journal := NewJournalStore(db)
	peak := int64(0)
	start := time.Now()
	for i := range 250 {
		events := make([]domain.Event, 50)
		for j := range events {
			at := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC).Add(time.Duration(i*50+j) * time.Millisecond)
			events[j] = domain.Event{SessionID: "s", SK: "EVENT#" + domain.FormatTime(at), Status: domain.StatusSessionInitiated,
				Timestamp: at, ErrorMessage: string(make([]byte, 400))}
		}
		_, err := journal.Append(ctx, events)
		require.NoError(t, err)
		peak = max(peak, db.WALSize())
	}
	cancel()
	wg.Wait()
	t.Logf("peak WAL %d bytes for a limit of %d; writes took %s", peak, limit, time.Since(start))
	// What is written between two checkpoints comes on top of the limit. Without the
	// TRUNCATE at the limit, the same run ends with all of its 16 MB in the WAL.
	assert.Less(t, peak, int64(4*limit), "the WAL stays near its limit")

	deadline := time.Now().Add(10 * time.Second)
	for db.WALSize() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	assert.Zero(t, db.WALSize(), "emptied once writes stop")
}
