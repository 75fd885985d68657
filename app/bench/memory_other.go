//go:build !unix

package bench

// syncFiles does nothing where there is no sync(2): the bench's figures may then include
// the write-back of the journal it loaded.
func syncFiles() {}

// lifetimePeakRSS is unknown here (0).
func lifetimePeakRSS() int64 { return 0 }
