package simulate

import (
	"math/bits"
	"sync"
	"time"
)

// collector gathers objects as compact records, pointer-free (the garbage collector
// need not scan a million of them), with the bodies in shared slabs, and turns them
// into Objects in delivery order at the end. Generate has one per chunk of sessions,
// then one for all.
type collector struct {
	records []record
	// slabs hold the bodies; a record points into them.
	slabs    [][]byte
	sessions []string
}

// record is an object before it is materialized.
type record struct {
	at      int64 // delivery, unix ns
	body    bodyRef
	session uint32
	kind    Kind
	flags   uint8
}

// Record flags.
const (
	flagRedelivery = 1 << iota
	flagDelayed
)

// bodyRef locates a body in the collector's slabs.
type bodyRef struct {
	slab, off, n uint32
}

// Slabs hold many bodies; a new one starts when less than slabReserve is left, which
// fits any body (a body that does not fit is still correct: append moves the slab).
const (
	slabSize    = 512 << 10
	slabReserve = 16 << 10
)

// newCollector returns a collector with room for capacity records.
func newCollector(capacity int) *collector {
	return &collector{records: make([]record, 0, capacity)}
}

// addSession registers a session id and returns its index.
func (c *collector) addSession(id string) uint32 {
	c.sessions = append(c.sessions, id)
	return uint32(len(c.sessions) - 1)
}

// body encodes a body at the end of the current slab.
func (c *collector) body(encode func(dst []byte, mal malformation) []byte, mal malformation) ([]byte, bodyRef) {
	n := len(c.slabs)
	if n == 0 || cap(c.slabs[n-1])-len(c.slabs[n-1]) < slabReserve {
		c.slabs = append(c.slabs, make([]byte, 0, slabSize))
		n++
	}
	slab := c.slabs[n-1]
	start := len(slab)
	slab = encode(slab, mal)
	c.slabs[n-1] = slab
	return slab[start:len(slab):len(slab)], bodyRef{slab: uint32(n - 1), off: uint32(start), n: uint32(len(slab) - start)}
}

// push adds an object.
func (c *collector) push(r record) { c.records = append(c.records, r) }

// objects returns the objects in delivery order, materialized by workers goroutines;
// objects delivered at the same instant keep the order they were made in.
func (c *collector) objects(workers int) []Object {
	sorted := sortRecords(c.records)
	objs := make([]Object, len(sorted))
	var wg sync.WaitGroup
	part := (len(sorted) + workers - 1) / max(workers, 1)
	for lo := 0; lo < len(sorted); lo += part {
		hi := min(lo+part, len(sorted))
		wg.Go(func() {
			for i := lo; i < hi; i++ {
				r := &sorted[i]
				slab := c.slabs[r.body.slab]
				end := r.body.off + r.body.n
				objs[i] = Object{
					Body:       slab[r.body.off:end:end],
					At:         time.Unix(0, r.at).UTC(),
					SessionID:  c.sessions[r.session],
					Kind:       r.kind,
					Redelivery: r.flags&flagRedelivery != 0,
					Delayed:    r.flags&flagDelayed != 0,
				}
			}
		})
	}
	wg.Wait()
	return objs
}

// sortRecords sorts records by delivery time with a stable LSD radix sort, which beats
// a comparison sort several times over on a million records. It may return rs or a
// new slice.
func sortRecords(rs []record) []record {
	if len(rs) < 2 {
		return rs
	}
	lo, hi := rs[0].at, rs[0].at
	for i := range rs {
		lo, hi = min(lo, rs[i].at), max(hi, rs[i].at)
	}
	const digit = 11
	const mask = 1<<digit - 1
	width := bits.Len64(uint64(hi - lo))
	src, dst := rs, []record(nil)
	for shift := 0; shift < width; shift += digit {
		var count [1 << digit]int
		for i := range src {
			count[uint64(src[i].at-lo)>>shift&mask]++
		}
		sum := 0
		for d, n := range count {
			count[d] = sum
			sum += n
		}
		if dst == nil {
			dst = make([]record, len(rs))
		}
		for i := range src {
			d := uint64(src[i].at-lo) >> shift & mask
			dst[count[d]] = src[i]
			count[d]++
		}
		src, dst = dst, src
	}
	return src
}
