package simulate

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Generate simulates the traffic cfg describes, after SetDefaults, and returns its
// objects in delivery order (by At) with the truth of every session, keyed by session id.
// The same cfg gives the same objects, byte for byte, in the same order (objects due at
// the same instant in the order they were made), however many CPUs share the work. An
// invalid cfg is an error and nothing else.
//
// Sessions start over [Start, Start+Window) and run to the end of their story, so the
// last objects are delivered after the window; only long-running background tasks that
// would complete after the window are left running (SessionTruth.CompletesAt).
func Generate(cfg Config) ([]Object, map[string]SessionTruth, error) {
	return generate(cfg, min(runtime.GOMAXPROCS(0), maxWorkers))
}

// maxWorkers bounds the goroutines of Generate.
const maxWorkers = 8

// generate is Generate with a given number of worker goroutines. Sessions are
// simulated in chunks of consecutive sessions, in parallel: a session depends only on
// its number and start time, so the chunks, put back in order, are what one goroutine
// would have made.
func generate(cfg Config, workers int) ([]Object, map[string]SessionTruth, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, fmt.Errorf("simulate: invalid config: %w", err)
	}
	perSession := newSim(cfg.simConfig(), nil, nil).meanObjects(cfg.Weights)
	sessions := cfg.Sessions
	if sessions == 0 {
		sessions = max(1, int(math.Round(float64(cfg.Events)/perSession)))
	}
	chunkSize := min(max(sessions/(8*workers), 16), 1024)
	chunks := produce(&cfg, workers, chunkSize, sessions, perSession)
	objs, truth := assemble(chunks, workers)
	return objs, truth, nil
}

// chunk is what a run of consecutive sessions produced.
type chunk struct {
	seq    int
	coll   *collector
	truths []SessionTruth
	// ends[k] is the number of records once session k of the chunk was done.
	ends []int
}

// chunkJob asks for a chunk: sessions first, first+1, ... starting at starts (unix ns).
type chunkJob struct {
	seq      int
	first    uint64
	starts   []int64
	capacity int
}

// chunk simulates the sessions of j.
func (g *sim) chunk(j chunkJob) *chunk {
	c := &chunk{seq: j.seq, coll: newCollector(j.capacity),
		truths: make([]SessionTruth, 0, len(j.starts)), ends: make([]int, 0, len(j.starts))}
	g.collect = c.coll
	for k, at := range j.starts {
		c.truths = append(c.truths, g.session(j.first+uint64(k), at))
		c.ends = append(c.ends, len(c.coll.records))
	}
	g.collect = nil
	return c
}

// truncate keeps the chunk's first sessions, up to the one whose objects reach n.
func (c *chunk) truncate(n int) {
	k := 0
	for c.ends[k] < n {
		k++
	}
	c.coll.records = c.coll.records[:c.ends[k]]
	c.coll.sessions = c.coll.sessions[:k+1]
	c.truths = c.truths[:k+1]
	c.ends = c.ends[:k+1]
}

// produce simulates chunks of chunkSize sessions on workers goroutines and returns
// them in order: cfg.Sessions sessions, or sessions until cfg.Events objects. Session
// arrivals are a Poisson process whose rate spreads the expected sessions over the
// window; it has its own random stream, so sessions do not shift each other.
func produce(cfg *Config, workers, chunkSize, expected int, perSession float64) []*chunk {
	jobs := make(chan chunkJob)
	results := make(chan *chunk)
	done := make(chan struct{})
	// Chunks handed out but not yet taken in order: bounds the work done ahead.
	inFlight := make(chan struct{}, 2*workers)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			g := newSim(cfg.simConfig(), nil, nil)
			for j := range jobs {
				results <- g.chunk(j)
			}
		})
	}
	go func() {
		wg.Wait()
		close(results)
	}()
	go func() {
		defer close(jobs)
		arrivals := rand.New(rand.NewPCG(mix(cfg.Seed, 0xa441), mix(cfg.Seed, 0x7a1)))
		meanGap := float64(cfg.Window) / float64(expected)
		start, offset := cfg.Start.UnixNano(), 0.0
		for seq := 0; ; seq++ {
			first, n := seq*chunkSize, chunkSize
			if cfg.Sessions > 0 {
				if n = min(n, cfg.Sessions-first); n <= 0 {
					return
				}
			}
			starts := make([]int64, n)
			for k := range starts {
				offset += arrivals.ExpFloat64() * meanGap
				starts[k] = start + int64(offset)
			}
			job := chunkJob{seq: seq, first: uint64(first), starts: starts, capacity: int(float64(n)*perSession*1.2) + 16}
			select {
			case inFlight <- struct{}{}:
			case <-done:
				return
			}
			select {
			case jobs <- job:
			case <-done:
				return
			}
		}
	}()

	var out []*chunk
	pending := map[int]*chunk{}
	objects, finished := 0, false
	for c := range results {
		if finished {
			continue // drain what the workers had started
		}
		pending[c.seq] = c
		for !finished {
			c, ok := pending[len(out)]
			if !ok {
				break
			}
			delete(pending, c.seq)
			<-inFlight
			if cfg.Sessions == 0 && objects+len(c.coll.records) >= cfg.Events {
				c.truncate(cfg.Events - objects)
				finished = true
				close(done)
			}
			objects += len(c.coll.records)
			out = append(out, c)
		}
	}
	return out
}

// assemble puts the chunks' objects in delivery order and indexes their truth.
func assemble(chunks []*chunk, workers int) ([]Object, map[string]SessionTruth) {
	n, sessions := 0, 0
	for _, c := range chunks {
		n += len(c.coll.records)
		sessions += len(c.truths)
	}
	truth := make(map[string]SessionTruth, sessions)
	indexed := make(chan struct{})
	go func() {
		defer close(indexed)
		for _, c := range chunks {
			for _, t := range c.truths {
				truth[t.SessionID] = t
			}
		}
	}()
	all := &collector{records: make([]record, 0, n), sessions: make([]string, 0, sessions)}
	for _, c := range chunks {
		slabBase, sessionBase := uint32(len(all.slabs)), uint32(len(all.sessions))
		for _, r := range c.coll.records {
			r.body.slab += slabBase
			r.session += sessionBase
			all.records = append(all.records, r)
		}
		all.slabs = append(all.slabs, c.coll.slabs...)
		all.sessions = append(all.sessions, c.coll.sessions...)
	}
	objs := all.objects(workers)
	<-indexed
	return objs, truth
}

// simConfig is what the simulator needs from cfg.
func (c *Config) simConfig() simConfig {
	return simConfig{
		seed: c.Seed, agents: c.Agents, agentNames: c.AgentNames, weights: c.Weights,
		timing: c.Timing, region: c.Region, account: c.Account,
		dupRate: c.DuplicateRate, reorderRate: c.ReorderRate, malformedRate: c.MalformedRate,
		windowEndMs: c.Start.Add(c.Window).UnixMilli(),
	}
}

// meanObjects estimates how many objects a session yields on average, duplicates and
// malformed copies included, by planning every scenario a few times.
func (g *sim) meanObjects(weights map[Scenario]float64) float64 {
	const samples = 6
	var perScenario [numScenarios]float64
	for j, sc := range Scenarios {
		if weights[sc] <= 0 {
			continue
		}
		n := 0
		for k := range samples {
			g.pcg.Seed(mix(g.seed, 0xe57+uint64(j)), uint64(k))
			var truth SessionTruth
			g.journal, g.changes = g.journal[:0], g.changes[:0]
			p := planner{g: g, ag: &g.agents[0], rng: g.rng, startMs: 1, truth: &truth}
			p.plan(sc)
			n += len(g.journal)
			for _, c := range g.changes {
				if !c.dropped {
					n++
				}
			}
		}
		perScenario[j] = float64(n) / samples
	}
	// Agents weigh scenarios differently: average over agents by popularity.
	mean, prev := 0.0, 0.0
	for i := range g.agents {
		a := &g.agents[i]
		share := (g.popularity[i] - prev) / g.popularity[len(g.popularity)-1]
		prev = g.popularity[i]
		w, lower := 0.0, 0.0
		for j := range Scenarios {
			w += (a.cumWeights[j] - lower) * perScenario[j]
			lower = a.cumWeights[j]
		}
		mean += share * w / a.cumWeights[numScenarios-1]
	}
	return mean * (1 + g.dupRate) * (1 + g.malformedP)
}
