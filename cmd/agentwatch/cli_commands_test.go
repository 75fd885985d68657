package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rivo/uniseg"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cliDay is the day of the CLI fixture's sessions.
var cliDay = time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)

// fixtureItem is a seed-002 journal item as one NDJSON line.
func fixtureItem(session, status string, at time.Time, msg string) string {
	m := map[string]string{"PK": "SESSION#" + session, "SK": "EVENT#" + at.Format("2006-01-02T15:04:05.000Z"),
		"Status": status, "Timestamp": at.Format("2006-01-02T15:04:05.000Z")}
	if msg != "" {
		m["ErrorMessage"] = msg
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// fixtureChange is a Step Functions status change as one NDJSON line.
func fixtureChange(agent, name, session, status string, start, stop time.Time) string {
	input, _ := json.Marshal(map[string]string{"session_id": session})
	detail := map[string]any{
		"executionArn":    "arn:aws:states:us-east-1:123456789012:execution:" + agent + ":" + name,
		"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:" + agent,
		"name":            name, "status": status, "startDate": start.UnixMilli(), "input": string(input),
	}
	if !stop.IsZero() {
		detail["stopDate"] = stop.UnixMilli()
	}
	if status == "FAILED" {
		detail["error"], detail["cause"] = "States.TaskFailed", "the background task failed"
	}
	b, _ := json.Marshal(map[string]any{"version": "0", "id": name + status, "detail-type": "Step Functions Execution Status Change",
		"source": "aws.states", "account": "123456789012", "time": start.Format(time.RFC3339), "region": "us-east-1", "detail": detail})
	return string(b)
}

// seed002Session writes the happy path of seed 002, then a failed retry of its
// background task, so that the six queries of the guide have something to select.
func seed002Session(id string, at time.Time) []string {
	steps := []struct {
		status string
		after  time.Duration
		msg    string
	}{
		{"SESSION_INITIATED", 0, ""},
		{"AGENT_RUNTIME_INVOCATION_STARTED", 1234 * time.Millisecond, ""},
		{"AGENT_RUNTIME_INVOCATION_SUCCEEDED", 2456 * time.Millisecond, ""},
		{"AGENT_ENTRYPOINT_STARTED", 3789 * time.Millisecond, ""},
		{"AGENT_BACKGROUND_TASK_STARTED", 4012 * time.Millisecond, ""},
		{"AGENT_BACKGROUND_TASK_FAILED", 65 * time.Second, "ClientError: ThrottlingException - Rate exceeded"},
		{"AGENT_BACKGROUND_TASK_STARTED", 70 * time.Second, ""},
		{"AGENT_BACKGROUND_TASK_COMPLETED", 5*time.Minute + 45678*time.Millisecond, ""},
	}
	var out []string
	for _, s := range steps {
		out = append(out, fixtureItem(id, s.status, at.Add(s.after), s.msg))
	}
	return out
}

// cliFixture is a data directory with a few sessions, executions and one rejected
// object, built by the real `ingest`.
func cliFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	lines := seed002Session("abc-123-def", cliDay)
	lines = append(lines,
		fixtureChange("support-agent", "run-1", "abc-123-def", "RUNNING", cliDay, time.Time{}),
		fixtureChange("support-agent", "run-1", "abc-123-def", "SUCCEEDED", cliDay, cliDay.Add(6*time.Minute)),
		fixtureChange("support-agent", "run-2", "s-failed", "RUNNING", cliDay.Add(2*time.Hour), time.Time{}),
		fixtureChange("support-agent", "run-2", "s-failed", "FAILED", cliDay.Add(2*time.Hour), cliDay.Add(2*time.Hour+65*time.Second)),
		fixtureItem("s-failed", "SESSION_INITIATED", cliDay.Add(2*time.Hour), ""),
		fixtureItem("s-failed", "AGENT_RUNTIME_INVOCATION_STARTED", cliDay.Add(2*time.Hour+time.Second), ""),
		fixtureItem("s-failed", "AGENT_RUNTIME_INVOCATION_FAILED", cliDay.Add(2*time.Hour+2*time.Second), "Failed to invoke AgentCore: Timeout\nTraceback (most recent call last):\n  ..."),
		// A bad SK and no Status: two reasons, joined on two lines.
		`{"PK":"SESSION#x","SK":"nope","Timestamp":"2024-11-04T10:30:00.000Z"}`,
	)
	run := runBinary(t, strings.Join(lines, "\n")+"\n", nil, "--data-dir", dir, "ingest", "-")
	require.Equal(t, exitRejected, run.code, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	return dir
}

// TestExitCodes: one exit-code table for every command.
func TestExitCodes(t *testing.T) {
	dir := cliFixture(t)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"ok", []string{"executions", "list"}, exitOK, ""},
		{"unknown command", []string{"nope"}, exitUsage, `unknown command "nope"`},
		{"unknown flag", []string{"executions", "list", "--nope"}, exitUsage, "unknown flag: --nope"},
		{"missing argument", []string{"sessions", "show"}, exitUsage, "accepts 1 arg(s)"},
		{"bad status", []string{"executions", "list", "--status", "bogus"}, exitUsage, "--status: must be one of"},
		{"bad from", []string{"executions", "list", "--from", "bogus"}, exitUsage, `--from: "bogus" is not a time`},
		{"to before from", []string{"executions", "list", "--from", "2024-11-05", "--to", "2024-11-04"}, exitUsage, "--to: must not be before from"},
		{"limit 0", []string{"executions", "list", "--limit", "0"}, exitUsage, "--limit: must be between 1 and 1000, not 0"},
		{"limit too big", []string{"executions", "list", "--limit", "1001"}, exitUsage, "--limit: must be between 1 and 1000"},
		{"events limit 0", []string{"sessions", "events", "abc-123-def", "--limit", "0"}, exitUsage, "--limit: must be between 1 and 10000"},
		{"alerts limit", []string{"alerts", "--limit", "-1"}, exitUsage, "--limit: must be between 1 and 1000"},
		{"quarantine limit", []string{"quarantine", "--limit", "0"}, exitUsage, "--limit: must be between 1 and 1000"},
		{"bad order", []string{"sessions", "events", "abc-123-def", "--order", "up"}, exitUsage, "--order: must be asc or desc"},
		{"bad granularity", []string{"stats", "--granularity", "week"}, exitUsage, "--granularity: must be hour or day"},
		{"bad state", []string{"alerts", "--state", "closed"}, exitUsage, "--state: must be open, resolved or all"},
		{"bad kind", []string{"alerts", "ack", "abc-123-def", "bogus"}, exitUsage, "KIND: must be one of"},
		{"bad backend", []string{"--backend", "mysql", "stuck"}, exitUsage, "--backend: must be sqlite or aws"},
		{"bad color", []string{"--color", "pink", "stuck"}, exitUsage, "--color: must be auto, always or never"},
		{"unknown session", []string{"sessions", "show", "nope"}, exitNotFound, "session nope: not found"},
		{"unknown session's events", []string{"sessions", "events", "nope"}, exitNotFound, "session nope: not found"},
		{"unknown execution", []string{"executions", "show", "nope"}, exitNotFound, `no execution has the ARN, name or session id "nope": not found`},
		{"unknown ARN", []string{"executions", "show", "arn:aws:states:us-east-1:1:execution:x:y"}, exitNotFound, "get execution arn:aws:states:us-east-1:1:execution:x:y: not found"},
		{"unknown alert", []string{"alerts", "ack", "nope", "stuck"}, exitNotFound, "ack alert nope/stuck: not found"},
		{"cannot write", []string{"export", "--since", "2024-11-01", "--out", filepath.Join(dir, "no", "such", "dir", "x.ndjson")}, exitError, "export to"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := runBinary(t, "", nil, append([]string{"--data-dir", dir}, tt.args...)...)
			assert.Equal(t, tt.code, run.code, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
			assert.Contains(t, run.stderr, tt.stderr)
			if tt.stderr != "" {
				// Each error says its context once.
				first, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(run.stderr), "agentwatch: "), ":")
				assert.LessOrEqual(t, strings.Count(run.stderr, first+":"), 1, "context repeated: %s", run.stderr)
			}
		})
	}
	t.Run("partly rejected input", func(t *testing.T) {
		body := fixtureItem("fresh", "SESSION_INITIATED", cliDay, "") + "\nnot json\n"
		run := runBinary(t, body, nil, "--data-dir", dir, "ingest", "-")
		assert.Equal(t, exitRejected, run.code)
		assert.Contains(t, run.stdout, "1 accepted, 0 duplicate, 1 rejected")
		assert.Contains(t, run.stdout, "rejected  object 1 (line 2): malformed JSON")
		assert.Equal(t, 1, strings.Count(run.stdout, "object 1 (line 2)"), "said once: %s", run.stdout)
		assert.Contains(t, run.stderr, "1 of 2 objects rejected")
		js := runBinary(t, body, nil, "--data-dir", dir, "ingest", "-", "--json")
		assert.Equal(t, exitRejected, js.code, "with --json too")
		var rep struct{ Accepted, Duplicate, Rejected int }
		require.NoError(t, json.Unmarshal([]byte(js.stdout), &rep))
		assert.Equal(t, 1, rep.Rejected)
	})
}

// TestReadingCommandsRefuseAnEmptyDataDir: a mistyped --data-dir quietly created an
// empty database and printed an empty table.
func TestReadingCommandsRefuseAnEmptyDataDir(t *testing.T) {
	for _, args := range [][]string{
		{"executions", "list"}, {"executions", "show", "x"}, {"sessions", "show", "x"}, {"sessions", "events", "x"},
		{"stats"}, {"stuck"}, {"alerts"}, {"alerts", "ack", "x", "stuck"}, {"quarantine"}, {"export", "--since", "24h"}, {"rebuild"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for _, dir := range []string{filepath.Join(t.TempDir(), "typo"), t.TempDir()} {
				run := runBinary(t, "", nil, append([]string{"--data-dir", dir}, args...)...)
				assert.Equal(t, exitNotFound, run.code, "stderr: %s", run.stderr)
				assert.Contains(t, run.stderr, "holds no agentwatch database")
				_, err := os.Stat(filepath.Join(dir, "agentwatch.db"))
				assert.ErrorIs(t, err, os.ErrNotExist, "no database was created")
			}
		})
	}
}

// TestSessionsEventsQueries: the queries of seed 002 through `sessions events`.
func TestSessionsEventsQueries(t *testing.T) {
	dir := cliFixture(t)
	statuses := func(t *testing.T, args ...string) []string {
		t.Helper()
		run := runBinary(t, "", nil, append([]string{"--data-dir", dir, "sessions", "events", "abc-123-def", "--json"}, args...)...)
		require.Equal(t, exitOK, run.code, "stderr: %s", run.stderr)
		var l struct {
			Items []struct{ Status, Timestamp string }
		}
		require.NoError(t, json.Unmarshal([]byte(run.stdout), &l))
		out := make([]string, len(l.Items))
		for i, it := range l.Items {
			out[i] = it.Timestamp[11:23] + " " + it.Status
		}
		return out
	}
	all := statuses(t)
	require.Len(t, all, 10, "the eight agent events and two status changes: %v", all)
	assert.Equal(t, "10:30:00.000 SESSION_INITIATED", all[0])
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"all, oldest first", nil, all},
		{"newest first", []string{"--order", "desc"}, reversed(all)},
		{"one status", []string{"--status", "AGENT_BACKGROUND_TASK_COMPLETED"}, []string{"10:35:45.678 AGENT_BACKGROUND_TASK_COMPLETED"}},
		{"several statuses", []string{"--status", "SESSION_INITIATED, AGENT_BACKGROUND_TASK_COMPLETED"},
			[]string{"10:30:00.000 SESSION_INITIATED", "10:35:45.678 AGENT_BACKGROUND_TASK_COMPLETED"}},
		{"failures", []string{"--failures"}, []string{"10:31:05.000 AGENT_BACKGROUND_TASK_FAILED"}},
		{"latest 2", []string{"--order", "desc", "--limit", "2"}, reversed(all)[:2]},
		{"after a time", []string{"--after", "2024-11-04T10:31:00Z", "--order", "desc"}, reversed(all)[:4]},
		{"nothing matches", []string{"--status", "EXECUTION_ABORTED"}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, statuses(t, tt.args...))
		})
	}
	t.Run("a table without --json", func(t *testing.T) {
		run := runBinary(t, "", nil, "--data-dir", dir, "sessions", "events", "abc-123-def", "--failures")
		require.Equal(t, exitOK, run.code, "stderr: %s", run.stderr)
		assert.Contains(t, run.stdout, "AGENT_BACKGROUND_TASK_FAILED")
		assert.Contains(t, run.stdout, "ClientError: ThrottlingException - Rate exceeded")
		assert.Contains(t, run.stdout, "\n1 event\n")
		assert.Contains(t, run.stdout, "2024-11-04 10:31:05.000 UTC", "to the millisecond, with the zone")
	})
}

func reversed(s []string) []string {
	out := make([]string, len(s))
	for i := range s {
		out[len(s)-1-i] = s[i]
	}
	return out
}

// TestExecutionsShowFindsByNameOrSession: `executions show <name from the list>` said
// not found, and the list never printed the ARN it needed.
func TestExecutionsShowFindsByNameOrSession(t *testing.T) {
	dir := cliFixture(t)
	arn := "arn:aws:states:us-east-1:123456789012:execution:support-agent:run-2"
	for _, term := range []string{arn, "run-2", "s-failed"} {
		t.Run(term, func(t *testing.T) {
			run := runBinary(t, "", nil, "--data-dir", dir, "executions", "show", term)
			require.Equal(t, exitOK, run.code, "stderr: %s", run.stderr)
			assert.Contains(t, run.stdout, arn)
			assert.Contains(t, run.stdout, "FAILED")
			assert.Contains(t, run.stdout, "1m 05s", "durations as the History page writes them")
			js := runBinary(t, "", nil, "--data-dir", dir, "executions", "show", term, "--json")
			var it struct{ ExecutionArn string }
			require.NoError(t, json.Unmarshal([]byte(js.stdout), &it))
			assert.Equal(t, arn, it.ExecutionArn)
		})
	}
	wide := runBinary(t, "", nil, "--data-dir", dir, "executions", "list", "--wide")
	assert.Contains(t, wide.stdout, arn, "--wide lists the ARNs")
}

// TestTablesFitAndStayOnOneLine: rows were about 150 columns whatever the terminal,
// and multi-line quarantine reasons broke the table.
func TestTablesFitAndStayOnOneLine(t *testing.T) {
	dir := cliFixture(t)
	for _, args := range [][]string{
		{"executions", "list"}, {"sessions", "show", "s-failed"}, {"sessions", "events", "s-failed"}, {"stats"},
		{"quarantine"}, {"executions", "show", "run-2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			for _, width := range []int{80, 120} {
				run := runBinary(t, "", []string{fmt.Sprintf("COLUMNS=%d", width)}, append([]string{"--data-dir", dir}, args...)...)
				require.Equal(t, exitOK, run.code, "stderr: %s", run.stderr)
				for _, line := range strings.Split(run.stdout, "\n") {
					if strings.HasPrefix(line, "Failures by stage") || strings.HasPrefix(line, "Top errors") ||
						strings.HasPrefix(line, "Execution  ") || strings.HasPrefix(line, "Diagnosis") || strings.HasPrefix(line, "Session ") {
						continue // prose lines, not table rows
					}
					assert.LessOrEqual(t, uniseg.StringWidth(line), width, "at %d columns: %q", width, line)
				}
			}
		})
	}
	t.Run("a multi-line reason is one row", func(t *testing.T) {
		run := runBinary(t, "", nil, "--data-dir", dir, "quarantine")
		require.Equal(t, exitOK, run.code)
		lines := strings.Split(strings.TrimSpace(run.stdout), "\n")
		require.Len(t, lines, 4, "header, one row, blank, total: %s", run.stdout)
		assert.Contains(t, lines[1], "SK: must start with \"EVENT#\", found \"nope\" ⏎ Status: is missing")
	})
	t.Run("no colour when not a terminal, colour when asked, NO_COLOR respected", func(t *testing.T) {
		plain := runBinary(t, "", nil, "--data-dir", dir, "executions", "list")
		assert.NotContains(t, plain.stdout, "\x1b[")
		forced := runBinary(t, "", nil, "--data-dir", dir, "executions", "list", "--color", "always")
		assert.Contains(t, forced.stdout, "\x1b[31m✗ FAILED\x1b[0m")
		assert.Contains(t, forced.stdout, "\x1b[32m✓ SUCCEEDED\x1b[0m")
		noColor := runBinary(t, "", []string{"NO_COLOR=1"}, "--data-dir", dir, "executions", "list", "--color", "auto")
		assert.NotContains(t, noColor.stdout, "\x1b[")
	})
	t.Run("times show their zone", func(t *testing.T) {
		utc := runBinary(t, "", []string{"TZ=UTC"}, "--data-dir", dir, "executions", "list")
		assert.Contains(t, utc.stdout, "2024-11-04 12:30:00 UTC")
		ny := runBinary(t, "", []string{"TZ=America/New_York"}, "--data-dir", dir, "executions", "list")
		assert.Contains(t, ny.stdout, "2024-11-04 07:30:00 EST")
	})
}

// TestStatsByHourAndDay: --granularity hour printed the same as day, and failures by
// stage appeared only with --json.
func TestStatsByHourAndDay(t *testing.T) {
	dir := cliFixture(t)
	day := runBinary(t, "", nil, "--data-dir", dir, "stats")
	hour := runBinary(t, "", nil, "--data-dir", dir, "stats", "--granularity", "hour")
	require.Equal(t, exitOK, day.code, day.stderr)
	require.Equal(t, exitOK, hour.code, hour.stderr)
	assert.NotEqual(t, day.stdout, hour.stdout)
	assert.Contains(t, day.stdout, "2024-11-04 ")
	assert.Contains(t, hour.stdout, "2024-11-04 10:00 UTC")
	assert.Contains(t, hour.stdout, "2024-11-04 12:00 UTC")
	assert.Contains(t, hour.stdout, "Failures by stage: invocation 1, entrypoint 0, background task 0, missing completion 0")
}

// TestTimeVocabulary: the CLI takes the API's words for times.
func TestTimeVocabulary(t *testing.T) {
	dir := cliFixture(t)
	for _, from := range []string{"2024-11-04", "2024-11-04T12:00:00Z", "yesterday", "today", "now", "24h", "7d", "2w"} {
		run := runBinary(t, "", nil, "--data-dir", dir, "executions", "list", "--from", from, "--json")
		assert.Equal(t, exitOK, run.code, "--from %s: %s", from, run.stderr)
	}
	run := runBinary(t, "", nil, "--data-dir", dir, "executions", "list", "--from", "2024-11-04T12:00:00Z", "--json")
	assert.Contains(t, run.stdout, "run-2")
	assert.NotContains(t, run.stdout, "run-1")
}

// TestBackfillNamesMissingCredentials: backfill without credentials ended with
// "interrupted; run the same command again to resume".
func TestBackfillNamesMissingCredentials(t *testing.T) {
	env := []string{"AWS_REGION=us-east-1", "AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(t.TempDir(), "none"), "AWS_CONFIG_FILE=" + filepath.Join(t.TempDir(), "none"),
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONTAINER_CREDENTIALS_FULL_URI=", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI=",
		"AWS_WEB_IDENTITY_TOKEN_FILE=", "AWS_ENDPOINT_URL_SFN=http://127.0.0.1:9"}
	run := runBinary(t, "", env, "--data-dir", t.TempDir(), "backfill", "--agent-tags=false",
		"--state-machine", "arn:aws:states:us-east-1:123456789012:stateMachine:support-agent")
	assert.Equal(t, exitError, run.code, "stdout: %s\nstderr: %s", run.stdout, run.stderr)
	assert.Contains(t, run.stderr, "no AWS credentials for the Step Functions API")
	assert.Contains(t, run.stdout, "stopped: no AWS credentials")
	assert.NotContains(t, run.stdout, "interrupted; run the same command again to resume")
}
