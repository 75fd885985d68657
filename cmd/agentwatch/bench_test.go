package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app/bench"
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
	var res bench.RebuildResult
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
	assert.Positive(t, res.PeakHeapBytes)
	assert.Zero(t, res.Requests, "no DynamoDB in embedded mode")

	listed, err := runCLI(t.Context(), "executions", "list", "--data-dir", dir, "--json", "--log-level", "error")
	require.NoError(t, err)
	assert.Contains(t, listed, "executionArn", "the rebuilt generation serves")
}

// TestBenchOnDynamoDBLocal runs `agentwatch bench --backend aws` on DynamoDB Local: the
// rebuild's requests per event and the naive-projector and per-message-router
// comparisons are in its report.
func TestBenchOnDynamoDBLocal(t *testing.T) {
	// The same key and region as dynamotest's own client: DynamoDB Local keeps one
	// database per key and region.
	t.Setenv("AWS_ACCESS_KEY_ID", "local")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
	t.Setenv("AWS_REGION", "us-east-1")
	args := backendArgs(t, "aws")
	out, err := runCLI(t.Context(), append([]string{"bench", "--events", "300", "--seed", "5"}, args...)...)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var res bench.RebuildResult
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &res), "the last line is JSON: %s", lines[len(lines)-1])
	assert.Equal(t, "aws", res.Backend)
	assert.Positive(t, res.Requests)
	assert.Positive(t, res.WriteRequests)
	assert.Positive(t, res.NaiveWrites)
	assert.Positive(t, res.NaiveTimeRatio)
	assert.Greater(t, res.NaiveWritesRatio, 1.0, "the naive projector writes more than the rebuild")
	assert.Positive(t, res.RouterTimeRatio)
	assert.Contains(t, out, "naive projector")
	assert.Contains(t, out, "GoChannel router")
}

// TestRebuildCommand rebuilds a data directory with the journal read in several parts
// and checks the report and that the listings did not change; a bad --parallel is
// refused, naming the flag, and leaves the serving generation as it was.
func TestRebuildCommand(t *testing.T) {
	dir := t.TempDir()
	_, err := runCLI(t.Context(), "bench", "--events", "2000", "--seed", "3", "--data-dir", dir, "--log-level", "error")
	require.NoError(t, err)
	list := func() any {
		out, err := runCLI(t.Context(), "executions", "list", "--data-dir", dir, "--all", "--json", "--log-level", "error")
		require.NoError(t, err)
		var v any
		require.NoError(t, json.Unmarshal([]byte(out), &v), out)
		return stripIndexedAt(v)
	}
	before := list()

	_, err = runCLI(t.Context(), "rebuild", "--data-dir", dir, "--parallel", "-1", "--log-level", "error")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parallel")

	out, err := runCLI(t.Context(), "rebuild", "--data-dir", dir, "--parallel", "3", "--grace", "0s", "--json", "--log-level", "error")
	require.NoError(t, err)
	var rep struct {
		FromGeneration, ToGeneration int
		Events                       int64
	}
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	assert.Equal(t, rep.FromGeneration+1, rep.ToGeneration)
	assert.GreaterOrEqual(t, rep.Events, int64(2000))
	assert.Equal(t, before, list(), "the rebuilt listings are the ones before")
}
