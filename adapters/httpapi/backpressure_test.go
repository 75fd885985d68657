package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/sqlite/sqlitetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
)

// TestIngestPushesBackWhileProjectionIsBehind: once the projection backlog is over its
// bound, POST /v1/events answers 429 with Retry-After and appends nothing; once the
// projector caught up, it takes the same body.
func TestIngestPushesBackWhileProjectionIsBehind(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	db, err := sqlite.Open(t.Context(), t.TempDir(), logger)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	journal := sqlite.NewJournalStore(db)
	cps := sqlite.NewCheckpointStore(db)
	reg := prometheus.NewRegistry()
	gate, err := app.NewBackpressure(app.BackpressureConfig{MaxBacklog: 5, Fresh: time.Nanosecond, RetryAfter: 2 * time.Second},
		sqlite.NewProjectionProgress(db, app.HandlerProject), reg, logger)
	require.NoError(t, err)
	ingester := app.NewIngester(journal, sqlite.NewQuarantineStore(db), nil, domain.MappingConfig{}, logger, nil)
	ingester.PushBackWith(gate)
	queries := sqlitetest.On(t, db).Queries()
	srv, err := httpapi.New(httpapi.Config{}, queries, ingester, reg, nil, logger)
	require.NoError(t, err)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)

	body := func(from int) []byte {
		var b bytes.Buffer
		for i := from; i < from+4; i++ {
			ts := domain.FormatTime(time.Date(2024, 11, 4, 10, 0, i, 0, time.UTC))
			b.WriteString(`{"PK":"SESSION#bp","SK":"EVENT#` + ts + `","Status":"SESSION_INITIATED","Timestamp":"` + ts + `"}` + "\n")
		}
		return b.Bytes()
	}
	post := func(b []byte) *http.Response {
		resp, err := http.Post(ts.URL+"/v1/events", "application/x-ndjson", bytes.NewReader(b))
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	assert.Equal(t, http.StatusOK, post(body(0)).StatusCode, "backlog 0")
	assert.Equal(t, http.StatusOK, post(body(4)).StatusCode, "backlog 4, within 5")
	resp := post(body(8))
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, "backlog 8, over 5")
	assert.Equal(t, "2", resp.Header.Get("Retry-After"))
	n, err := journal.MaxSeq(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 8, n, "nothing appended while pushing back")

	require.NoError(t, cps.SetCheckpoint(t.Context(), app.HandlerProject, strconv.FormatInt(n, 10)))
	assert.Equal(t, http.StatusOK, post(body(8)).StatusCode, "caught up")
	mfs, err := reg.Gather()
	require.NoError(t, err)
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	assert.True(t, names["agentwatch_projection_backlog_events"] && names["agentwatch_projection_backlog_bound_events"], "backlog and bound are metrics")
}
