package sqlite_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/sqlite"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

// distinctEvents is storetest.GenerateEvents with session ids and ARNs that name the
// seed, so that the journals of several seeds do not share sessions.
func distinctEvents(seed uint64, n int, start time.Time) []domain.Event {
	evs := storetest.GenerateEvents(seed, n, start)
	suffix := "-" + strconv.FormatUint(seed, 10)
	for i := range evs {
		evs[i].SessionID += suffix
		if evs[i].Exec.ExecutionArn != "" {
			evs[i].Exec.ExecutionArn += suffix
		}
	}
	return evs
}

// scanEvents is the size of BenchmarkScan's journal (AGENTWATCH_BENCH_SCAN_EVENTS
// overrides it).
func scanEvents() int {
	if n, err := strconv.Atoi(os.Getenv("AGENTWATCH_BENCH_SCAN_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 1_000_000
}

var benchJournal struct {
	once   sync.Once
	dir    string
	events int
	err    error
}

// sharedJournal builds the scan benchmark's journal once per process.
func sharedJournal(b *testing.B) (dir string, events int) {
	b.Helper()
	benchJournal.once.Do(func() {
		benchJournal.dir, benchJournal.err = os.MkdirTemp("", "agentwatch-bench-*")
		if benchJournal.err != nil {
			return
		}
		ctx := context.Background()
		db, err := sqlite.Open(ctx, benchJournal.dir, nil)
		if err != nil {
			benchJournal.err = err
			return
		}
		defer db.Close()
		journal := sqlite.NewJournalStore(db)
		want := scanEvents()
		start := time.Now()
		for seed := uint64(0); benchJournal.events < want; seed++ {
			evs := distinctEvents(seed, 10_000, day.Add(time.Duration(seed)*24*time.Hour))
			evs = evs[:min(len(evs), want-benchJournal.events)]
			if _, err := journal.Append(ctx, evs); err != nil {
				benchJournal.err = err
				return
			}
			benchJournal.events += len(evs)
		}
		b.Logf("built a journal of %d events in %s", benchJournal.events, time.Since(start))
	})
	require.NoError(b, benchJournal.err)
	return benchJournal.dir, benchJournal.events
}

// processCPU is the CPU time this process used so far (user + system, all threads):
// on a shared machine, a steadier measure of work than wall time.
func processCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

func TestMain(m *testing.M) {
	code := m.Run()
	if benchJournal.dir != "" {
		_ = os.RemoveAll(benchJournal.dir)
	}
	os.Exit(code)
}

// BenchmarkAppend appends batches of 1000 new events.
func BenchmarkAppend(b *testing.B) {
	db := openDB(b)
	journal := sqlite.NewJournalStore(db)
	const batch = 1000
	var events []domain.Event
	for seed := uint64(0); len(events) < b.N*batch; seed++ {
		events = append(events, distinctEvents(seed, 10_000, day.Add(time.Duration(seed)*24*time.Hour))...)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := journal.Append(b.Context(), events[i*batch:(i+1)*batch]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkScan scans the whole journal (1e6 events by default) with one reader and
// with the default (one per CPU), side by side.
func BenchmarkScan(b *testing.B) {
	dir, n := sharedJournal(b)
	db, err := sqlite.Open(b.Context(), dir, nil)
	require.NoError(b, err)
	defer db.Close()
	journal := sqlite.NewJournalStore(db)
	for _, parallel := range []int{1, 0} {
		b.Run(fmt.Sprintf("parallel=%d", parallel), func(b *testing.B) {
			cpu := processCPU()
			for i := 0; i < b.N; i++ {
				got := 0
				if err := journal.Scan(b.Context(), app.ScanOptions{Parallel: parallel}, func(batch []domain.Event) error { got += len(batch); return nil }); err != nil {
					b.Fatal(err)
				}
				if got != n {
					b.Fatalf("scanned %d events, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((processCPU()-cpu)/float64(b.N), "cpu-s/op")
		})
	}
}

// BenchmarkScanFold is the read side of a rebuild: scan the journal and fold it into
// projections.Model.
func BenchmarkScanFold(b *testing.B) {
	dir, n := sharedJournal(b)
	db, err := sqlite.Open(b.Context(), dir, nil)
	require.NoError(b, err)
	defer db.Close()
	journal := sqlite.NewJournalStore(db)
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		storetest.FoldJournal(b, journal)
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric((processCPU()-cpu)/float64(b.N), "cpu-s/op")
}

// benchRegistry is every registered read model.
func benchRegistry(b *testing.B) *projections.Registry {
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(b, err)
	return reg
}

// BenchmarkBulkLoad loads the read models of ~170k sessions into a fresh generation.
func BenchmarkBulkLoad(b *testing.B) {
	const sessionsN = 170_000
	m := projections.NewModel()
	for seed := uint64(0); m.Len() < sessionsN; seed++ {
		evs := distinctEvents(seed, 10_000, day.Add(time.Duration(seed)*24*time.Hour))
		for i := range evs {
			m.Apply(&evs[i])
		}
	}
	reg := benchRegistry(b)
	sessions := m.SessionValues()
	st := m.Derive(reg, projections.Env{NowMs: day.UnixMilli(), Replay: true})
	db, err := sqlite.Open(b.Context(), b.TempDir(), slog.New(slog.DiscardHandler))
	require.NoError(b, err)
	defer db.Close()
	store := sqlite.NewReadModelStore(db, reg, 0)
	b.ResetTimer()
	var cpu float64
	for i := 0; i < b.N; i++ {
		gen := i + 2
		start := processCPU()
		if err := store.BulkLoad(b.Context(), gen, app.GenerationOf(sessions, st)); err != nil {
			b.Fatal(err)
		}
		cpu += processCPU() - start
		b.StopTimer()
		if err := store.DropGeneration(b.Context(), gen); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(len(sessions)*b.N)/b.Elapsed().Seconds(), "sessions/s")
	b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
}

// BenchmarkProjectPages is the live path: journal events projected through the
// projector in pages of 1, 100 and 1000 events, each page loaded, folded and committed
// at once (sessions, every read model, the checkpoint).
func BenchmarkProjectPages(b *testing.B) {
	reg := benchRegistry(b)
	for _, page := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("page=%d", page), func(b *testing.B) {
			db := openDB(b)
			store := sqlite.NewReadModelStore(db, reg, 0)
			require.NoError(b, store.CreateGeneration(b.Context(), 1, reg.Signature()))
			require.NoError(b, store.SwitchGeneration(b.Context(), 1))
			p := app.NewProjector(store, reg, slog.New(slog.DiscardHandler), nil)
			var events []domain.Event
			for seed := uint64(0); len(events) < b.N; seed++ {
				events = append(events, distinctEvents(seed, 10_000, day.Add(time.Duration(seed)*24*time.Hour))...)
			}
			events = events[:b.N]
			ctx := b.Context()
			b.ResetTimer()
			start := processCPU()
			for lo := 0; lo < len(events); lo += page {
				hi := min(lo+page, len(events))
				if err := p.Project(ctx, events[lo:hi], &app.Checkpoint{Name: "projector", Position: strconv.Itoa(hi)}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric((processCPU()-start)/float64(b.N)*1e6, "cpu-µs/event")
		})
	}
}

// BenchmarkRebuild is a rebuild's heavy part end to end over the scan benchmark's
// journal: scan and fold it into sessions, derive every read model, bulk-load a new
// generation.
func BenchmarkRebuild(b *testing.B) {
	dir, n := sharedJournal(b)
	db, err := sqlite.Open(b.Context(), dir, nil)
	require.NoError(b, err)
	defer db.Close()
	reg := benchRegistry(b)
	journal := sqlite.NewJournalStore(db)
	store := sqlite.NewReadModelStore(db, reg, 0)
	b.ResetTimer()
	var scan, load time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		m := storetest.FoldJournal(b, journal)
		sessions := m.SessionValues()
		scan += time.Since(start)
		start = time.Now()
		gen := 100 + i
		st := m.Derive(reg, projections.Env{NowMs: day.UnixMilli(), Replay: true})
		if err := store.BulkLoad(b.Context(), gen, app.GenerationOf(sessions, st)); err != nil {
			b.Fatal(err)
		}
		load += time.Since(start)
		b.StopTimer()
		if err := store.DropGeneration(b.Context(), gen); err != nil {
			b.Fatal(err)
		}
		if i == 0 {
			b.Logf("%d events: %d sessions", n, len(sessions))
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(scan.Seconds()/float64(b.N), "scan+fold-s/op")
	b.ReportMetric(load.Seconds()/float64(b.N), "derive+load-s/op")
}
