package dynamodbstreams

import (
	"errors"
	"fmt"
	"sync"
	"time"

	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the subscriber's Prometheus metrics (namespace agentwatch, subsystem
// dynamodbstreams). Subscribers that register with the same registry share them.
// Every labelled counter starts at zero for each of its known label values, so that
// rate() and increase() see the first event.
type metrics struct {
	recordsRead          *prometheus.CounterVec
	recordsSkipped       *prometheus.CounterVec
	pagesDelivered       prometheus.Counter
	pagesNacked          prometheus.Counter
	leasesHeld           prometheus.Gauge
	leaseEvents          *prometheus.CounterVec
	leaseWritesConfirmed prometheus.Counter
	iteratorRenewals     prometheus.Counter
	trimmedRestarts      prometheus.Counter
	quarantined          *prometheus.CounterVec
	// shards reports the per-shard gauges of the readers of every subscriber that
	// registered with the same registry.
	shards *shardCollector
}

// Lease events, the label of lease_events_total.
const (
	leaseTaken            = "taken"
	leaseTakenExpired     = "taken_expired"
	leaseAdopted          = "adopted"
	leaseHandoffRequested = "handoff_requested"
	leaseHandedOff        = "handed_off"
	leaseReleased         = "released"
	leaseFinished         = "finished"
	leaseLost             = "lost"
)

var leaseEventNames = []string{leaseTaken, leaseTakenExpired, leaseAdopted, leaseHandoffRequested, leaseHandedOff,
	leaseReleased, leaseFinished, leaseLost}

// Quarantine reasons, the label of quarantined_total.
const (
	quarantineInvalid = "invalid"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "agentwatch", "dynamodbstreams"
	m := &metrics{
		recordsRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_read_total",
			Help: "Stream records read, by event name (INSERT, MODIFY, REMOVE)."}, []string{"event_name"}),
		recordsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_skipped_total",
			Help: "Stream records not delivered, by reason (remove, no_new_image)."}, []string{"reason"}),
		pagesDelivered: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pages_delivered_total",
			Help: "Page messages delivered (one per GetRecords call that returned records to deliver), redeliveries included."}),
		pagesNacked: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "pages_nacked_total",
			Help: "Page messages nacked by the consumer, each delivered again after a backoff."}),
		leasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leases_held",
			Help: "Shard leases held by this process."}),
		leaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lease_events_total",
			Help: "Lease changes by this process: taken, taken_expired, adopted, handoff_requested, handed_off, released, finished, lost."}, []string{"event"}),
		leaseWritesConfirmed: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lease_writes_confirmed_total",
			Help: "Lease writes that failed their condition on a retry but had been applied (their response was lost), as a re-read of the lease showed: not lost leases."}),
		iteratorRenewals: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "iterator_renewals_total",
			Help: "Shard iterators replaced after ExpiredIteratorException."}),
		trimmedRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "trimmed_restarts_total",
			Help: "Shards restarted at TRIM_HORIZON after TrimmedDataAccessException past a checkpoint or a read record (records were lost)."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "quarantined_total",
			Help: "Records put into the quarantine, by reason (invalid: not a journal item)."}, []string{"reason"}),
		shards: newShardCollector(),
	}
	if reg != nil {
		var err error
		m.recordsRead, err = register(reg, m.recordsRead)
		if err == nil {
			m.recordsSkipped, err = register(reg, m.recordsSkipped)
		}
		if err == nil {
			m.pagesDelivered, err = register(reg, m.pagesDelivered)
		}
		if err == nil {
			m.pagesNacked, err = register(reg, m.pagesNacked)
		}
		if err == nil {
			m.leasesHeld, err = register(reg, m.leasesHeld)
		}
		if err == nil {
			m.leaseEvents, err = register(reg, m.leaseEvents)
		}
		if err == nil {
			m.leaseWritesConfirmed, err = register(reg, m.leaseWritesConfirmed)
		}
		if err == nil {
			m.iteratorRenewals, err = register(reg, m.iteratorRenewals)
		}
		if err == nil {
			m.trimmedRestarts, err = register(reg, m.trimmedRestarts)
		}
		if err == nil {
			m.quarantined, err = register(reg, m.quarantined)
		}
		if err == nil {
			m.shards, err = register(reg, m.shards)
		}
		if err != nil {
			return nil, fmt.Errorf("register dynamodbstreams metrics: %w", err)
		}
	}
	for _, name := range []stypes.OperationType{stypes.OperationTypeInsert, stypes.OperationTypeModify, stypes.OperationTypeRemove} {
		m.recordsRead.WithLabelValues(string(name))
	}
	for _, reason := range skipReasons {
		m.recordsSkipped.WithLabelValues(reason)
	}
	for _, event := range leaseEventNames {
		m.leaseEvents.WithLabelValues(event)
	}
	m.quarantined.WithLabelValues(quarantineInvalid)
	return m, nil
}

// register registers c, or returns the collector registered before it with the same
// description (another Subscriber of this process).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// shardCollector reports, on each scrape, two gauges per shard that a reader of a
// subscriber registered with it holds:
//
//   - agentwatch_dynamodbstreams_lag_seconds{shard}: now minus the time up to which the
//     shard is known read — the start of the last GetRecords that reached the shard's
//     end, else the creation time of the newest record read. It grows while reads fail
//     (the time since the last read that found the end), instead of keeping the value
//     of the last read.
//   - agentwatch_dynamodbstreams_shard_seconds_since_read{shard}: the time since the
//     last successful GetRecords (since the lease was taken, before the first).
type shardCollector struct {
	lag, sinceRead *prometheus.Desc

	mu   sync.Mutex
	subs map[*Subscriber]struct{}
}

func newShardCollector() *shardCollector {
	return &shardCollector{
		lag: prometheus.NewDesc("agentwatch_dynamodbstreams_lag_seconds",
			"Per shard held: now minus the time up to which the shard is known read (the start of the last read that reached its end, else the creation time of the newest record read); it keeps growing while reads fail.",
			[]string{"shard"}, nil),
		sinceRead: prometheus.NewDesc("agentwatch_dynamodbstreams_shard_seconds_since_read",
			"Per shard held: seconds since the last successful GetRecords (since the lease was taken, before the first); a stalled reader shows here and in /readyz.",
			[]string{"shard"}, nil),
		subs: map[*Subscriber]struct{}{},
	}
}

func (c *shardCollector) add(s *Subscriber) {
	c.mu.Lock()
	c.subs[s] = struct{}{}
	c.mu.Unlock()
}

// Describe implements prometheus.Collector.
func (c *shardCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.sinceRead
}

// Collect implements prometheus.Collector.
func (c *shardCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	subs := make([]*Subscriber, 0, len(c.subs))
	for s := range c.subs {
		subs = append(subs, s)
	}
	c.mu.Unlock()
	now := time.Now()
	seen := map[string]bool{}
	for _, s := range subs {
		for _, r := range s.activeReaders() {
			if seen[r.shardID] {
				continue // two subscriptions of this process on one shard: a handoff between them
			}
			seen[r.shardID] = true
			st := r.status(now)
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, st.lag.Seconds(), r.shardID)
			ch <- prometheus.MustNewConstMetric(c.sinceRead, prometheus.GaugeValue, st.sinceRead.Seconds(), r.shardID)
		}
	}
}

// readerStatus is what the metrics and the readiness check know of a reader.
type readerStatus struct {
	// lag is now minus the time up to which the shard is known read.
	lag time.Duration
	// sinceRead is the time since the last successful GetRecords.
	sinceRead time.Duration
	// sinceProgress is the time since the last successful read or page acked.
	sinceProgress time.Duration
	// lastErr is the last read error since the last successful read.
	lastErr string
	// reading is how long the GetRecords call in flight has run (0: none).
	reading time.Duration
}

func (r *shardReader) status(now time.Time) readerStatus {
	mono := now.Sub(clockBase)
	st := readerStatus{
		lag:           max(now.Sub(time.Unix(0, r.readPos.Load())), 0),
		sinceRead:     max(mono-time.Duration(r.readAt.Load()), 0),
		sinceProgress: max(mono-time.Duration(r.progressAt.Load()), 0),
	}
	if e := r.lastErr.Load(); e != nil {
		st.lastErr = *e
	}
	if since := r.readingSince.Load(); since != 0 {
		st.reading = max(mono-time.Duration(since), 0)
	}
	return st
}
