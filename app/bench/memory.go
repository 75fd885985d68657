package bench

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// resetPeakRSS hands the memory the process no longer uses back to the system and
// resets its peak resident set size (Linux: /proc/self/clear_refs), so that peakRSS
// then measures what comes after. It reports whether the reset took.
func resetPeakRSS() bool {
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return false
	}
	_, ok := vmHWM()
	return ok
}

// peakRSS is the process's peak resident set size since the last resetPeakRSS, or over
// its whole life where that cannot be reset.
func peakRSS() int64 {
	if v, ok := vmHWM(); ok {
		return v
	}
	return lifetimePeakRSS()
}

// vmHWM reads the peak resident set size from /proc/self/status.
func vmHWM() (int64, bool) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, false
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024, err == nil
		}
	}
	return 0, false
}

// sampleHeapPeak samples the Go heap's object bytes every few milliseconds until the
// returned function is called, which returns the largest sample.
func sampleHeapPeak() func() int64 {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() int64 {
		metrics.Read(sample)
		if sample[0].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return int64(sample[0].Value.Uint64())
	}
	stop, done := make(chan struct{}), make(chan int64)
	go func() {
		peak := read()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				peak = max(peak, read())
			case <-stop:
				done <- max(peak, read())
				return
			}
		}
	}()
	return func() int64 {
		close(stop)
		return <-done
	}
}
