package dynamodbstreams

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the subscriber's Prometheus metrics (namespace agentwatch, subsystem
// dynamodbstreams). Subscribers that register with the same registry share them.
type metrics struct {
	recordsRead      *prometheus.CounterVec
	recordsSkipped   *prometheus.CounterVec
	lag              *prometheus.GaugeVec
	leasesHeld       prometheus.Gauge
	leaseEvents      *prometheus.CounterVec
	iteratorRenewals prometheus.Counter
	trimmedRestarts  prometheus.Counter
	quarantined      *prometheus.CounterVec
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

// Quarantine reasons, the label of quarantined_total.
const (
	quarantineInvalid = "invalid"
	quarantineRetries = "retries"
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	const ns, sub = "agentwatch", "dynamodbstreams"
	m := &metrics{
		recordsRead: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_read_total",
			Help: "Stream records read, by event name (INSERT, MODIFY, REMOVE)."}, []string{"event_name"}),
		recordsSkipped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_skipped_total",
			Help: "Stream records not delivered, by reason (remove, no_new_image)."}, []string{"reason"}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "lag_seconds",
			Help: "Per shard held: now minus the ApproximateCreationDateTime of the last record read; 0 once a read finds nothing new."}, []string{"shard"}),
		leasesHeld: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "leases_held",
			Help: "Shard leases held by this process."}),
		leaseEvents: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "lease_events_total",
			Help: "Lease changes by this process: taken, taken_expired, adopted, handoff_requested, handed_off, released, finished, lost."}, []string{"event"}),
		iteratorRenewals: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "iterator_renewals_total",
			Help: "Shard iterators replaced after ExpiredIteratorException."}),
		trimmedRestarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "trimmed_restarts_total",
			Help: "Shards restarted at TRIM_HORIZON after TrimmedDataAccessException (records were lost)."}),
		quarantined: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "quarantined_total",
			Help: "Records put into the quarantine, by reason (invalid: not a journal item; retries: nacked too often)."}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	m.recordsRead, err = register(reg, m.recordsRead)
	if err == nil {
		m.recordsSkipped, err = register(reg, m.recordsSkipped)
	}
	if err == nil {
		m.lag, err = register(reg, m.lag)
	}
	if err == nil {
		m.leasesHeld, err = register(reg, m.leasesHeld)
	}
	if err == nil {
		m.leaseEvents, err = register(reg, m.leaseEvents)
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
	if err != nil {
		return nil, fmt.Errorf("register dynamodbstreams metrics: %w", err)
	}
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
