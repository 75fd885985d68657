package main

import (
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
