package dynamodbstreams

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestPlanLeases(t *testing.T) {
	free := func(id string, parents ...string) Lease { return Lease{ShardID: id, ParentShardIDs: parents} }
	owned := func(id, owner string) Lease { return Lease{ShardID: id, Owner: owner, Counter: 7} }
	finished := func(id string) Lease { return Lease{ShardID: id, Checkpoint: CheckpointShardEnd} }
	pending := func(l Lease, to string) Lease { l.PendingOwner = to; return l }
	all := func(ids ...string) map[string]bool {
		m := map[string]bool{}
		for _, id := range ids {
			m[id] = true
		}
		return m
	}
	ids := func(ls []Lease) []string {
		var out []string
		for _, l := range ls {
			out = append(out, l.ShardID)
		}
		return out
	}
	tests := []struct {
		name        string
		leases      []Lease
		inStream    map[string]bool
		held        map[string]bool
		expired     map[string]bool
		wantTake    []string
		wantHandoff string
		wantTarget  int
	}{
		{
			name:     "alone: takes every free lease",
			leases:   []Lease{free("s2"), free("s1"), free("s3"), free("s4")},
			inStream: all("s1", "s2", "s3", "s4"), wantTake: []string{"s1", "s2", "s3", "s4"}, wantTarget: 4,
		},
		{
			name:     "another worker holds all: ask it for the last of its leases",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "B"), owned("s4", "B")},
			inStream: all("s1", "s2", "s3", "s4"), wantHandoff: "s4", wantTarget: 2,
		},
		{
			name:     "a free lease first, then one asked for",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "B"), free("s4")},
			inStream: all("s1", "s2", "s3", "s4"), wantTake: []string{"s4"}, wantHandoff: "s3", wantTarget: 2,
		},
		{
			name:     "an expired owner is not a worker; its leases are taken",
			leases:   []Lease{owned("s1", "dead"), owned("s2", "dead"), owned("s3", "B")},
			inStream: all("s1", "s2", "s3"), expired: all("s1", "s2"), wantTake: []string{"s1", "s2"}, wantTarget: 2,
		},
		{
			name:     "balanced: nothing to do",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "me"), owned("s4", "me")},
			inStream: all("s1", "s2", "s3", "s4"), held: all("s3", "s4"), wantTarget: 2,
		},
		{
			name:     "odd count: no one holds more than the target",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "me")},
			inStream: all("s1", "s2", "s3"), held: all("s3"), wantTarget: 2,
		},
		{
			name:     "a lease already asked for counts: no second request",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), pending(owned("s3", "B"), "me"), owned("s4", "me")},
			inStream: all("s1", "s2", "s3", "s4"), held: all("s4"), wantTarget: 2,
		},
		{
			name:     "one request per sync: still short after a pending request, ask for another",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "B"), pending(owned("s4", "B"), "me")},
			inStream: all("s1", "s2", "s3", "s4"), wantHandoff: "s3", wantTarget: 2,
		},
		{
			name:     "a lease asked for by someone else is not asked for again",
			leases:   []Lease{owned("s1", "B"), owned("s2", "B"), owned("s3", "B"), pending(owned("s4", "B"), "C")},
			inStream: all("s1", "s2", "s3", "s4"), wantHandoff: "s3", wantTarget: 2,
		},
		{
			name:     "leases handed over to me are taken first",
			leases:   []Lease{owned("s1", "me"), free("s2")},
			inStream: all("s1", "s2"), wantTake: []string{"s1", "s2"}, wantTarget: 2,
		},
		{
			name:     "a child waits for its unfinished parent",
			leases:   []Lease{owned("p", "B"), free("c1", "p"), free("c2", "p")},
			inStream: all("p", "c1", "c2"), wantTarget: 1,
		},
		{
			name:     "children of a finished parent are readable",
			leases:   []Lease{finished("p"), free("c1", "p"), free("c2", "p")},
			inStream: all("p", "c1", "c2"), wantTake: []string{"c1", "c2"}, wantTarget: 2,
		},
		{
			name:     "children of a parent gone from the stream are readable",
			leases:   []Lease{owned("p", "B"), free("c1", "p")},
			inStream: all("c1"), wantTake: []string{"c1"}, wantTarget: 1,
		},
		{
			name:     "a parent in the stream without a lease yet holds its child back",
			leases:   []Lease{free("c1", "p")},
			inStream: all("p", "c1"),
		},
		{
			name:     "leases of shards gone from the stream are not read",
			leases:   []Lease{free("gone"), free("s1")},
			inStream: all("s1"), wantTake: []string{"s1"}, wantTarget: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := planLeases(planInput{me: "me", leases: tt.leases, inStream: tt.inStream, held: tt.held,
				expired: func(l *Lease) bool { return tt.expired[l.ShardID] }})
			assert.Equal(t, tt.wantTake, ids(p.take), "take")
			gotHandoff := ""
			if p.handoff != nil {
				gotHandoff = p.handoff.ShardID
			}
			assert.Equal(t, tt.wantHandoff, gotHandoff, "handoff")
			assert.Equal(t, tt.wantTarget, p.target, "target")
		})
	}
}

func TestLeaseTrackerExpiry(t *testing.T) {
	const d = 10 * time.Second
	t0 := time.Unix(1000, 0)
	tr := newLeaseTracker(d)
	l := Lease{ShardID: "s1", Owner: "B", Counter: 3}
	tr.observe([]Lease{l}, t0)
	assert.False(t, tr.expired(&l, t0.Add(d-time.Nanosecond)))
	assert.True(t, tr.expired(&l, t0.Add(d)), "counter unchanged for the lease duration")

	renewed := l
	renewed.Counter++
	tr.observe([]Lease{renewed}, t0.Add(d))
	assert.False(t, tr.expired(&renewed, t0.Add(d+d/2)), "a renewal restarts the clock")
	assert.True(t, tr.expired(&renewed, t0.Add(2*d)))

	moved := renewed
	moved.Owner = "C"
	tr.observe([]Lease{moved}, t0.Add(2*d))
	assert.False(t, tr.expired(&moved, t0.Add(2*d+d/2)), "a new owner restarts the clock")

	free := Lease{ShardID: "s2", Counter: 1}
	tr.observe([]Lease{moved, free}, t0)
	assert.False(t, tr.expired(&free, t0.Add(100*d)), "a free lease never expires: it is free")

	tr.observe([]Lease{free}, t0.Add(3*d))
	assert.NotContains(t, tr.seen, "s1", "leases no longer listed are forgotten")
	unseen := Lease{ShardID: "s9", Owner: "B"}
	assert.False(t, tr.expired(&unseen, t0.Add(100*d)), "a lease never observed is not expired")
}

func TestCompareSequenceNumbers(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"000000000000000000001", "000000000000000000002", -1},
		{"000000000000000000010", "9", 1},
		{"000000000000000000009", "9", 0},
		{"100000000000000000000", "99999999999999999999", 1},
		{"4000000000000000000000000000000000000001", "4000000000000000000000000000000000000002", -1},
		{"4000000000000000000000000000000000000001", "399999999999999999999999999999999999999", 1},
		{"98765432109876543210987", "98765432109876543210987", 0},
		{"", "000000000000000000001", -1},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, compareSequenceNumbers(tt.a, tt.b), "%s vs %s", tt.a, tt.b)
		assert.Equal(t, -tt.want, compareSequenceNumbers(tt.b, tt.a), "%s vs %s", tt.b, tt.a)
	}
	assert.True(t, validSequenceNumber("4000000000000000000000000000000000000001"))
	assert.False(t, validSequenceNumber(""))
	assert.False(t, validSequenceNumber("12a"))
}
