package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBenchEmbedded runs `agentwatch bench` on a small journal and checks its report:
// the figures it promises, its last line JSON, and a data directory left serving the
// rebuilt read models.
func TestBenchEmbedded(t *testing.T) {
	dir := t.TempDir()
	out, err := runCLI(t.Context(), "bench", "--events", "3000", "--seed", "7", "--data-dir", dir, "--log-level", "error")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	assert.Contains(t, out, "rebuild: ")
	var res benchResult
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &res), "the last line is JSON: %s", lines[len(lines)-1])
	assert.Equal(t, "sqlite", res.Backend)
	assert.GreaterOrEqual(t, res.Events, int64(3000))
	assert.Positive(t, res.Sessions)
	assert.Positive(t, res.RebuildSeconds)
	assert.InEpsilon(t, float64(res.Events)/res.RebuildSeconds, res.EventsPerSecond, 1e-9)
	assert.Positive(t, res.ScanFoldSeconds)
	assert.Positive(t, res.WriteSeconds)
	assert.Positive(t, res.PeakRSSBytes)
	assert.Contains(t, []string{"rebuild", "process"}, res.PeakRSSScope)
	assert.GreaterOrEqual(t, res.ProcessPeakRSSBytes, res.PeakRSSBytes)
	assert.Zero(t, res.Requests, "no DynamoDB in embedded mode")

	listed, err := runCLI(t.Context(), "executions", "list", "--data-dir", dir, "--json", "--log-level", "error")
	require.NoError(t, err)
	assert.Contains(t, listed, "executionArn", "the rebuilt generation serves")
}
