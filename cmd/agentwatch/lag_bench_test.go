package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// BenchmarkLiveLag measures the embedded worker's live lag: from a status change
// appended to the journal (through the ingester, as POST /v1/events does) to its
// execution visible in the index, through the tail subscriber, the router's project
// handler and the SQLite read models. Reports p50 and p99 in milliseconds.
func BenchmarkLiveLag(b *testing.B) {
	w := startWorkerB(b, filepath.Join(b.TempDir(), "lag"))
	var lags []time.Duration
	i := 0
	for b.Loop() {
		i++
		arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:lag-agent:exec-%d", i)
		body := fmt.Sprintf(`{"version":"0","id":"id-%d","detail-type":"Step Functions Execution Status Change","source":"aws.states","account":"123456789012","time":"2024-11-04T10:30:00Z","region":"us-east-1","resources":[%q],"detail":{"executionArn":%q,"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:lag-agent","name":"exec-%d","status":"RUNNING","startDate":%d,"stopDate":null,"input":"{}","inputDetails":{"included":true},"output":null,"outputDetails":null,"redriveCount":0}}`,
			i, arn, arn, i, time.Now().UnixMilli())
		start := time.Now()
		rep, err := w.ingester.IngestBody(b.Context(), "bench", []byte(body))
		if err != nil || rep.Accepted != 1 {
			b.Fatalf("ingest: %v %+v", err, rep)
		}
		for {
			if _, err := w.queries.Execution(b.Context(), arn); err == nil {
				break
			} else if !isNotFound(err) {
				b.Fatal(err)
			}
			time.Sleep(200 * time.Microsecond)
		}
		lags = append(lags, time.Since(start))
	}
	slices.Sort(lags)
	q := func(p float64) float64 {
		return float64(lags[min(len(lags)-1, int(p*float64(len(lags))))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
}

func isNotFound(err error) bool { return errors.Is(err, domain.ErrNotFound) }
