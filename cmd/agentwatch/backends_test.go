package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
)

// seedEvents are the journal items of the event journaling guide (seed 002) verbatim —
// the failure examples reuse the happy path's keys, so they are duplicates that must
// change nothing — and the status changes of the session's execution (seed 000's
// RUNNING, then SUCCEEDED), as EventBridge delivers them.
const seedEvents = `{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:00.000Z", "Status": "SESSION_INITIATED", "Timestamp": "2024-11-04T10:30:00.000Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:01.234Z", "Status": "AGENT_RUNTIME_INVOCATION_STARTED", "Timestamp": "2024-11-04T10:30:01.234Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:02.456Z", "Status": "AGENT_RUNTIME_INVOCATION_SUCCEEDED", "Timestamp": "2024-11-04T10:30:02.456Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:03.789Z", "Status": "AGENT_ENTRYPOINT_STARTED", "Timestamp": "2024-11-04T10:30:03.789Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:04.012Z", "Status": "AGENT_BACKGROUND_TASK_STARTED", "Timestamp": "2024-11-04T10:30:04.012Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:35:45.678Z", "Status": "AGENT_BACKGROUND_TASK_COMPLETED", "Timestamp": "2024-11-04T10:35:45.678Z"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:35:45.678Z", "Status": "AGENT_BACKGROUND_TASK_FAILED", "Timestamp": "2024-11-04T10:35:45.678Z", "ErrorMessage": "ClientError: ThrottlingException - Rate exceeded"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:02.456Z", "Status": "AGENT_RUNTIME_INVOCATION_FAILED", "Timestamp": "2024-11-04T10:30:02.456Z", "ErrorMessage": "Failed to invoke AgentCore: Timeout"}
{"PK": "SESSION#abc-123-def", "SK": "EVENT#2024-11-04T10:30:03.789Z", "Status": "AGENT_ENTRYPOINT_FAILED", "Timestamp": "2024-11-04T10:30:03.789Z", "ErrorMessage": "ValueError: Invalid request format"}
{"version":"0","id":"315c1398-40ff-a850-213b-158f73e60175","detail-type":"Step Functions Execution Status Change","source":"aws.states","account":"123456789012","time":"2024-11-04T10:30:00Z","region":"us-east-1","resources":["arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123"],"detail":{"executionArn":"arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:my-agent","name":"abc123","status":"RUNNING","startDate":1730716200000,"stopDate":null,"input":"{\"session_id\":\"abc-123-def\",\"agentName\":\"my-agent\"}","inputDetails":{"included":true},"output":null,"outputDetails":null,"redriveCount":0,"redriveStatus":"NOT_REDRIVABLE","redriveStatusReason":"Execution is RUNNING and cannot be redriven"}}
{"version":"0","id":"a1b2c3d4-40ff-a850-213b-158f73e60176","detail-type":"Step Functions Execution Status Change","source":"aws.states","account":"123456789012","time":"2024-11-04T10:35:46Z","region":"us-east-1","resources":["arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123"],"detail":{"executionArn":"arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123","stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:my-agent","name":"abc123","status":"SUCCEEDED","startDate":1730716200000,"stopDate":1730716546100,"input":"{\"session_id\":\"abc-123-def\",\"agentName\":\"my-agent\"}","inputDetails":{"included":true},"output":"{\"ok\":true}","outputDetails":{"included":true},"redriveCount":0,"redriveStatus":"NOT_REDRIVABLE","redriveStatusReason":"Execution is SUCCEEDED and cannot be redriven"}}
`

// TestBackendsAnswerAlike runs the worker on each backend — embedded SQLite, and
// DynamoDB Local with the journal's real stream as the feed — posts the seeds' events
// to /v1/events, and requires the same index, session and stats answers from both.
func TestBackendsAnswerAlike(t *testing.T) {
	answers := map[string]map[string]any{}
	for _, backend := range []string{"sqlite", "aws"} {
		t.Run(backend, func(t *testing.T) {
			g := &globals{backend: backend, dataDir: t.TempDir(), logLevel: "warn", out: io.Discard}
			if backend == "aws" {
				ep := dynamotest.Endpoint(t)
				t.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ep)
				t.Setenv("AWS_ENDPOINT_URL_DYNAMODB_STREAMS", ep)
				t.Setenv("AWS_ACCESS_KEY_ID", "local")
				t.Setenv("AWS_SECRET_ACCESS_KEY", "local")
				t.Setenv("AWS_REGION", "us-east-1")
				client := dynamotest.NewClient(t)
				g.tablePrefix = dynamotest.TablePrefix(t, client)
				root := newRootCommand()
				root.SetArgs([]string{"migrate", "--backend", "aws", "--table-prefix", g.tablePrefix, "--log-level", "warn"})
				root.SetOut(io.Discard)
				require.NoError(t, root.ExecuteContext(t.Context()))
			}
			o := &runOptions{httpAddr: "127.0.0.1:0", interval: time.Hour, shutdown: 20 * time.Second}
			fxApp, server, err := g.workerApp(o, slog.New(slog.NewTextHandler(io.Discard, nil)))
			require.NoError(t, err)
			require.NoError(t, fxApp.Start(t.Context()))
			defer func() { require.NoError(t, fxApp.Stop(t.Context())) }()
			base := "http://" + server.Addr()

			resp, err := http.Post(base+"/v1/events", "application/x-ndjson", strings.NewReader(seedEvents))
			require.NoError(t, err)
			var rep struct{ Accepted, Duplicate, Rejected int }
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
			resp.Body.Close()
			require.Equal(t, 200, resp.StatusCode)
			require.Equal(t, 8, rep.Accepted)
			require.Equal(t, 3, rep.Duplicate)

			// Projection is asynchronous (the tail, or the stream): wait for its effect.
			arn := "arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123"
			stats := "/v1/agents/my-agent/stats?granularity=day&from=2024-11-04&to=2024-11-04"
			// The stream delivers the events in any order, so the effect is complete
			// when every stage's duration is counted and the answer stops changing.
			var last []byte
			stableSince := time.Now()
			require.Eventually(t, func() bool {
				var it map[string]any
				var st map[string]any
				if getJSON(base+"/v1/executions/"+url.PathEscape(arn), &it) != 200 || it["status"] != "SUCCEEDED" ||
					getJSON(base+stats, &st) != 200 {
					return false
				}
				b := mustJSON(st)
				if !bytes.Equal(b, last) {
					last, stableSince = b, time.Now()
					return false
				}
				return bytes.Contains(b, []byte(`"completed":1`)) && time.Since(stableSince) > time.Second
			}, 60*time.Second, 50*time.Millisecond)

			got := map[string]any{}
			for _, path := range []string{"/v1/executions?from=2024-11-04&to=2024-11-04", "/v1/executions/" + url.PathEscape(arn),
				"/v1/sessions/abc-123-def", "/v1/sessions/abc-123-def/events", stats} {
				var v any
				require.Equal(t, 200, getJSON(base+path, &v), path)
				got[path] = stripIndexedAt(v)
			}
			answers[backend] = got
		})
	}
	if answers["sqlite"] != nil && answers["aws"] != nil {
		for path, want := range answers["sqlite"] {
			require.Equal(t, want, answers["aws"][path], path)
		}
		item := answers["sqlite"]["/v1/executions/"+url.PathEscape("arn:aws:states:us-east-1:123456789012:execution:my-agent:abc123")].(map[string]any)
		require.Equal(t, 346.1, item["durationSeconds"], "seed 000: updated with stopDate and durationSeconds")
		require.Equal(t, "2024-11-04T10:35:46.100Z", item["stopDate"])
	}
}

func getJSON(u string, v any) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// stripIndexedAt drops the one field that is the write time, not a function of the
// journal.
func stripIndexedAt(v any) any {
	switch x := v.(type) {
	case map[string]any:
		delete(x, "indexedAt")
		for k, e := range x {
			x[k] = stripIndexedAt(e)
		}
	case []any:
		for i, e := range x {
			x[i] = stripIndexedAt(e)
		}
	}
	return v
}
