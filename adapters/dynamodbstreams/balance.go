package dynamodbstreams

import (
	"cmp"
	"slices"
	"time"
)

// observation is what a worker last saw of a lease, and since when on its own clock.
type observation struct {
	owner   string
	counter int64
	since   time.Time
}

// leaseTracker tells expired leases apart the KCL's way: a lease is expired when this
// worker has seen its owner and counter unchanged for the lease duration, measured on
// its own monotonic clock. Clocks of different machines are never compared.
type leaseTracker struct {
	duration time.Duration
	seen     map[string]observation
}

func newLeaseTracker(d time.Duration) *leaseTracker {
	return &leaseTracker{duration: d, seen: map[string]observation{}}
}

// observe records the leases listed at now and forgets the leases no longer listed.
func (t *leaseTracker) observe(leases []Lease, now time.Time) {
	listed := make(map[string]bool, len(leases))
	for i := range leases {
		l := &leases[i]
		listed[l.ShardID] = true
		if o, ok := t.seen[l.ShardID]; ok && o.owner == l.Owner && o.counter == l.Counter {
			continue
		}
		t.seen[l.ShardID] = observation{owner: l.Owner, counter: l.Counter, since: now}
	}
	for id := range t.seen {
		if !listed[id] {
			delete(t.seen, id)
		}
	}
}

// expired reports whether l, as listed, has an owner that let it expire by now.
func (t *leaseTracker) expired(l *Lease, now time.Time) bool {
	if l.Owner == "" {
		return false
	}
	o, ok := t.seen[l.ShardID]
	return ok && o.owner == l.Owner && o.counter == l.Counter && now.Sub(o.since) >= t.duration
}

// planInput is what a lease plan is made from.
type planInput struct {
	// me is the planning subscription's owner name.
	me string
	// leases are every lease of the stream, as just listed.
	leases []Lease
	// inStream holds the shard ids DescribeStream listed.
	inStream map[string]bool
	// held holds the shards this subscription reads.
	held map[string]bool
	// expired tells whether a lease's owner let it expire.
	expired func(*Lease) bool
}

// leasePlan is what a subscription does with the leases in one sync.
type leasePlan struct {
	// take are the leases to take, in order: those owned by me that I do not read
	// (handed over to me), then free ones, then expired ones.
	take []Lease
	// handoff, when set, is a lease to ask its owner for.
	handoff *Lease
	// target is how many leases this subscription aims at.
	target int
	// workers is the number of live workers counted (me included).
	workers int
}

// readable reports whether l's shard may be read now: it is in the stream, not read to
// its end, and each parent is either read to its end or gone from the stream.
func readable(l *Lease, byShard map[string]*Lease, inStream map[string]bool) bool {
	if l.Finished() || !inStream[l.ShardID] {
		return false
	}
	for _, p := range l.ParentShardIDs {
		if !inStream[p] {
			continue // trimmed: nothing left to wait for
		}
		if pl, ok := byShard[p]; !ok || !pl.Finished() {
			return false
		}
	}
	return true
}

// planLeases balances leases KCL-style: each live worker (a distinct owner of a
// readable lease that has not expired, plus me) should hold ceil(readable/workers).
// Below target, I take free and expired leases; if none is left, I ask the most loaded
// worker, if it holds more than the target, for one lease.
func planLeases(in planInput) leasePlan {
	byShard := make(map[string]*Lease, len(in.leases))
	for i := range in.leases {
		byShard[in.leases[i].ShardID] = &in.leases[i]
	}
	var candidates []*Lease
	count := map[string]int{in.me: 0}
	owned := map[string][]*Lease{}
	pendingToMe := 0
	for i := range in.leases {
		l := &in.leases[i]
		if !readable(l, byShard, in.inStream) {
			continue
		}
		candidates = append(candidates, l)
		if l.Owner != "" && (l.Owner == in.me || !in.expired(l)) {
			count[l.Owner]++
			owned[l.Owner] = append(owned[l.Owner], l)
		}
		if l.PendingOwner == in.me && l.Owner != in.me {
			pendingToMe++
		}
	}
	p := leasePlan{workers: len(count)}
	if len(candidates) == 0 {
		return p
	}
	p.target = (len(candidates) + len(count) - 1) / len(count)
	mine := count[in.me]
	// Mine but not read: handed over to me, or left behind by an earlier fence.
	for _, l := range owned[in.me] {
		if !in.held[l.ShardID] {
			p.take = append(p.take, *l)
		}
	}
	var free, expired []*Lease
	for _, l := range candidates {
		switch {
		case l.Owner == "":
			free = append(free, l)
		case l.Owner != in.me && in.expired(l):
			expired = append(expired, l)
		}
	}
	byID := func(a, b *Lease) int { return cmp.Compare(a.ShardID, b.ShardID) }
	slices.SortFunc(free, byID)
	slices.SortFunc(expired, byID)
	for _, l := range append(free, expired...) {
		if mine >= p.target {
			break
		}
		p.take = append(p.take, *l)
		mine++
	}
	if mine+pendingToMe >= p.target {
		return p
	}
	// Nothing free: ask the most loaded worker, if it holds more than its share.
	victim, most := "", p.target
	for owner, n := range count {
		if owner != in.me && (n > most || (n == most && n > p.target && owner < victim)) {
			victim, most = owner, n
		}
	}
	if victim == "" {
		return p
	}
	leases := owned[victim]
	slices.SortFunc(leases, byID)
	for i := len(leases) - 1; i >= 0; i-- {
		if leases[i].PendingOwner == "" {
			l := *leases[i]
			p.handoff = &l
			break
		}
	}
	return p
}
