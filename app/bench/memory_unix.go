//go:build unix

package bench

import (
	"runtime"
	"syscall"
)

// syncFiles has the kernel write every dirty page out now.
func syncFiles() { syscall.Sync() }

// lifetimePeakRSS is the process's peak resident set size over its whole life.
func lifetimePeakRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return ru.Maxrss // bytes there; kilobytes elsewhere
	}
	return ru.Maxrss * 1024
}
