package app_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// BenchmarkDetectorMemory measures what the detector holds per open session with
// 1,000,000 open sessions in the embedded store: its heap (it keeps no per-session
// state: each tick reads only the due entries, through the deadline index, in batches)
// and the stored bytes per entry of the stuck read model.
func BenchmarkDetectorMemory(b *testing.B) {
	const open = 1_000_000
	dir := filepath.Join(b.TempDir(), "mem")
	start := time.Date(2024, 11, 4, 10, 0, 0, 0, time.UTC)
	e := newEmbedded(b, dir, start)
	writes := make([]projections.Row, open)
	for i := range writes {
		e := &stuck.Entry{
			SessionID: fmt.Sprintf("%08x-1b2c-4d5e-8f90-%012x", i, i), Agent: fmt.Sprintf("agent-%d", i%20),
			ExecutionArn: fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:agent-%d:%08x", i%20, i),
			LastStatus:   domain.StatusBackgroundTaskStarted, LastEventMs: start.UnixMilli(), Stage: domain.StageBackgroundTask,
			StageStartMs: start.UnixMilli(), ExecStatus: domain.ExecRunning, Outcome: domain.OutcomeInProgress,
		}
		writes[i] = projections.Row{Key: e.SessionID, Doc: e, Schedule: start.Add(time.Duration(30+i%600) * time.Minute).UnixMilli()}
	}
	before := dbSize(b, dir)
	gen, _, err := e.models.CurrentGeneration(context.Background())
	require.NoError(b, err)
	require.NoError(b, e.models.BulkLoad(context.Background(), gen, app.GenerationData{Rows: func(table string) app.TableRows {
		if table == stuck.Table {
			return app.TableRows{Documents: writes}
		}
		return app.TableRows{}
	}}))
	writes = nil
	stored := dbSize(b, dir) - before

	det := e.detector(app.DetectorConfig{Stuck: stuck.DefaultConfig()})
	e.clock.t = start.Add(10 * time.Minute) // nothing due yet
	runtime.GC()
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	for b.Loop() {
		require.NoError(b, det.Tick(context.Background()))
	}
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(float64(int64(m1.HeapInuse)-int64(m0.HeapInuse))/open, "heap-B/open-session")
	b.ReportMetric(float64(stored)/open, "stored-B/open-session")
}

func dbSize(b *testing.B, dir string) int64 {
	var n int64
	entries, err := os.ReadDir(dir)
	require.NoError(b, err)
	for _, f := range entries {
		if fi, err := f.Info(); err == nil {
			n += fi.Size()
		}
	}
	return n
}
