package app_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// TestUnknownStatusesAreOneBoundedLabel: a status cut inside a UTF-8 character panicked
// the Prometheus client, and every distinct unknown status was a series of its own.
func TestUnknownStatusesAreOneBoundedLabel(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := app.NewMetrics(reg)
	require.NoError(t, err)
	var logs bytes.Buffer
	m.SetLogger(slog.New(slog.NewTextHandler(&logs, nil)))

	series := func() int { return len(gather(t, reg)["agentwatch_unknown_status_events_total"]) }
	before := series()

	tests := []struct {
		name   string
		status domain.Status
	}{
		{"63 X and a two-byte character across the 64-byte cut", domain.Status(strings.Repeat("X", 63) + "é")},
		{"through detail.status", domain.ExecStatus(strings.Repeat("X", 53) + "é").JournalStatus()},
		{"invalid UTF-8", domain.Status("BAD\xff\xfeSTATUS")},
		{"a megabyte", domain.Status(strings.Repeat("é", 1<<19))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.NotPanics(t, func() { m.UnknownStatus(app.SourceHTTP, tt.status) })
			_, err := reg.Gather()
			require.NoError(t, err, "the registry gathers")
		})
	}
	for i := range 10_000 {
		m.UnknownStatus(app.SourceProjection, domain.Status(fmt.Sprintf("NEW_STATUS_%d", i)))
	}
	assert.Equal(t, before, series(), "10,000 distinct unknown statuses add no series")
	assert.InDelta(t, 4, counterValue(t, m.UnknownStatuses.WithLabelValues(app.SourceHTTP, app.OtherLabel)), 0)
	assert.InDelta(t, 10_000, counterValue(t, m.UnknownStatuses.WithLabelValues(app.SourceProjection, app.OtherLabel)), 0)

	// Known statuses are not unknown.
	m.UnknownStatus(app.SourceHTTP, domain.StatusSessionInitiated)
	m.UnknownStatus(app.SourceHTTP, domain.StatusExecutionRunning)
	assert.InDelta(t, 4, counterValue(t, m.UnknownStatuses.WithLabelValues(app.SourceHTTP, app.OtherLabel)), 0)

	// One sample per source and minute, bounded and valid UTF-8.
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	require.Len(t, lines, 2, "logs:\n%s", logs.String())
	assert.Contains(t, lines[0], "source=http")
	assert.Contains(t, lines[0], "status="+strings.Repeat("X", 63)+"... ", "cut on a character boundary")
	assert.Contains(t, lines[1], "source=projection")
	assert.Contains(t, lines[1], "NEW_STATUS_0")
	for _, l := range lines {
		assert.Less(t, len(l), 512, "a sample is bounded: %s", l)
	}
}

// TestLabelledCountersStartAtZero: a counter that appears only at its first increment
// is invisible to rate() and increase() for that first event.
func TestLabelledCountersStartAtZero(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := app.NewMetrics(reg)
	require.NoError(t, err)
	m.InitSinks("log", "webhook")
	want := map[string][]map[string]string{
		"agentwatch_ingested_total": {
			{"source": "http", "result": "accepted"}, {"source": "http", "result": "rejected"},
			{"source": "cli", "result": "duplicate"}, {"source": "queue", "result": "accepted"},
		},
		"agentwatch_unknown_status_events_total": {
			{"source": "http", "status": "other"}, {"source": "projection", "status": "other"},
		},
		"agentwatch_quarantined_total": {{"source": "http"}, {"source": "sqs"}, {"source": "dynamodb-stream"}},
		"agentwatch_alerts_raised_total": {
			{"kind": string(stuck.KindStuck)}, {"kind": string(stuck.KindMissingCompletion)}, {"kind": string(stuck.KindRecovered)},
		},
		"agentwatch_alerts_delivered_total":        {{"sink": "log"}, {"sink": "webhook"}},
		"agentwatch_alert_delivery_failures_total": {{"sink": "webhook"}},
	}
	have := gather(t, reg)
	for name, series := range have {
		for _, s := range series {
			assert.Zero(t, s.value, "%s %v", name, s.labels)
		}
	}
	for name, series := range want {
		for _, labels := range series {
			var found bool
			for _, s := range have[name] {
				found = found || assert.ObjectsAreEqual(labels, s.labels)
			}
			assert.True(t, found, "%s%v starts at zero; have %v", name, labels, have[name])
		}
	}
}

// sample is one series of a gathered metric.
type sample struct {
	labels map[string]string
	value  float64
}

// gather returns every series of reg by metric name.
func gather(t *testing.T, reg prometheus.Gatherer) map[string][]sample {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	out := map[string][]sample{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, l := range mt.GetLabel() {
				s.labels[l.GetName()] = l.GetValue()
			}
			switch {
			case mt.Counter != nil:
				s.value = mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				s.value = mt.GetGauge().GetValue()
			}
			out[f.GetName()] = append(out[f.GetName()], s)
		}
	}
	return out
}

// counterValue reads one counter.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	require.NoError(t, c.Write(&m))
	return m.GetCounter().GetValue()
}
