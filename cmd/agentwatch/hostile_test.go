package main

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestIngestCommandSurvivesHostileStatuses: `agentwatch ingest` of a Status whose
// metric label was cut inside a UTF-8 character panicked and exited 2, losing the good
// objects around it.
func TestIngestCommandSurvivesHostileStatuses(t *testing.T) {
	dir := t.TempDir()
	long := strings.Repeat("X", 63) + "é"
	body := `{"PK":"SESSION#good-1","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z"}
{"PK":"SESSION#hostile","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"` + long + `","Timestamp":"2024-11-04T10:30:00.000Z"}
{"PK":"SESSION#good-2","SK":"EVENT#2024-11-04T10:30:00.000Z","Status":"SESSION_INITIATED","Timestamp":"2024-11-04T10:30:00.000Z"}
`
	run := runBinary(t, body, nil, "--data-dir", dir, "ingest", "-")
	require.Equal(t, 0, run.code, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	assert.Contains(t, run.stdout, "3 accepted, 0 duplicate, 0 rejected")
	assert.NotContains(t, run.stderr, "panic")
	for _, id := range []string{"good-1", "hostile", "good-2"} {
		show := runBinary(t, "", nil, "--data-dir", dir, "sessions", "show", id)
		assert.Equal(t, 0, show.code, "%s: %s", id, show.stderr)
	}
}

// TestRunWithAuthToken: `run --auth-token-file` guards the API of the real worker, and
// the healthcheck command sends the token when /healthz is guarded too.
func TestRunWithAuthToken(t *testing.T) {
	bin := agentwatchBinary(t)
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	const token = "0123456789abcdef0123456789abcdef"
	require.NoError(t, os.WriteFile(tokenFile, []byte(token+"\n"), 0o600))
	worker, base := startWorkerProcess(t, bin, "run", "--data-dir", dir, "--http", "127.0.0.1:0", "--log-format", "json",
		"--detector-interval", "1h", "--auth-token-file", tokenFile, "--auth-ops-endpoints")
	status := func(path, tok string) int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		require.NoError(t, err)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, http.StatusUnauthorized, status("/v1/executions", ""))
	assert.Equal(t, http.StatusUnauthorized, status("/v1/executions", "wrong-wrong-wrong-wrong"))
	assert.Equal(t, http.StatusOK, status("/v1/executions", token))
	assert.Equal(t, http.StatusUnauthorized, status("/healthz", ""))

	addr := strings.TrimPrefix(base, "http://")
	hc := runBinary(t, "", nil, "healthcheck", "--http", addr)
	assert.Equal(t, 1, hc.code, "without the token: %s", hc.stderr)
	hc = runBinary(t, "", []string{"AGENTWATCH_AUTH_TOKEN_FILE=" + tokenFile}, "healthcheck", "--http", addr)
	assert.Equal(t, 0, hc.code, "with the token: %s", hc.stderr)
	assert.NotContains(t, worker.output(), "without authentication")

	t.Run("a token file that is too short is refused at start", func(t *testing.T) {
		short := filepath.Join(dir, "short")
		require.NoError(t, os.WriteFile(short, []byte("secret"), 0o600))
		run := runBinary(t, "", nil, "run", "--data-dir", t.TempDir(), "--http", "127.0.0.1:0", "--auth-token-file", short)
		assert.Equal(t, 1, run.code)
		assert.Contains(t, run.stderr, "--auth-token-file")
		assert.Contains(t, run.stderr, "at least 16 bytes")
	})
}

// TestRunWarnsBeyondLoopbackWithoutToken: --http :PORT bound every interface without
// a word.
func TestRunWarnsBeyondLoopbackWithoutToken(t *testing.T) {
	worker, _ := startWorkerProcess(t, agentwatchBinary(t), "run", "--data-dir", t.TempDir(), "--http", ":0",
		"--log-format", "json", "--detector-interval", "1h")
	out := worker.output()
	assert.Contains(t, out, `"level":"WARN"`)
	assert.Contains(t, out, "listens beyond loopback without authentication")
}
