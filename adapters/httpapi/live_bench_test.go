package httpapi_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// BenchmarkLivePoll measures one poll of the live hub, the work every server does
// every LiveInterval while a History page is open, over an embedded store of 5,000
// executions (a fifth of them RUNNING) and 1,000 open alerts:
//
//	go test ./adapters/httpapi -run x -bench LivePoll
func BenchmarkLivePoll(b *testing.B) {
	s := newStack(b, stackOptions{})
	start := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Second)
	for batch := range 10 {
		var objs []any
		for i := range 500 {
			n := batch*500 + i
			x := execution{agent: fmt.Sprintf("agent-%d", n%7), name: fmt.Sprintf("bench-%05d", n), session: fmt.Sprintf("sess-bench-%05d", n),
				start: start.Add(time.Duration(n) * 10 * time.Second)}
			objs = append(objs, statusChange(x, "RUNNING", time.Time{}, "", ""))
			if n%5 != 0 {
				objs = append(objs, statusChange(x, "SUCCEEDED", x.start.Add(30*time.Second), "", ""))
			}
		}
		s.post(objs...)
	}
	for i := range 1000 {
		require.NoError(b, s.alerts.InsertAlert(b.Context(), app.Alert{SessionID: fmt.Sprintf("sess-bench-%05d", i), Kind: stuck.KindStuck,
			AgentName: "agent-0", RaisedAt: start.Add(time.Duration(i) * time.Second)}))
	}
	b.ResetTimer()
	for b.Loop() {
		if err := httpapi.LivePoll(s.server); err != nil {
			b.Fatal(err)
		}
	}
}
