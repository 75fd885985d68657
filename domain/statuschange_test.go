package domain_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

const (
	docExecArn = "arn:aws:states:us-east-1:012345678912:execution:state-machine-name:execution-name"
	docSMArn   = "arn:aws:states:us-east-1:012345678912:stateMachine:state-machine"
	agentArn   = "arn:aws:states:us-east-1:123456789012:execution:research-agent:run-7f3c"
	agentSM    = "arn:aws:states:us-east-1:123456789012:stateMachine:research-agent"
	agentInput = `{"session_id": "abc-123-def", "prompt": "summarise Q3"}`
)

// The five examples of the Step Functions developer guide (cw-events), as published.
func TestDecodeStatusChange_AWSPublishedExamples(t *testing.T) {
	tests := []struct {
		file              string
		status            domain.ExecStatus
		startMs, stopMs   int64
		output            string
		wantOutputMissing bool
	}{
		{"aws-doc-running.json", domain.ExecRunning, 1551225271984, 0, "", true},
		{"aws-doc-succeeded.json", domain.ExecSucceeded, 1547148840101, 1547148840122, `"Hello World!"`, false},
		{"aws-doc-failed.json", domain.ExecFailed, 1551225146847, 1551225151881, "", true},
		{"aws-doc-timed-out.json", domain.ExecTimedOut, 1551224926156, 1551224927157, "", true},
		{"aws-doc-aborted.json", domain.ExecAborted, 1551225014968, 1551225017576, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sc, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/"+tt.file))
			require.NoError(t, err)
			want := domain.StatusChange{
				Version:         "0",
				ID:              "315c1398-40ff-a850-213b-158f73e60175",
				DetailType:      domain.StatusChangeDetailType,
				Source:          domain.StatusChangeSource,
				Account:         "012345678912",
				EnvelopeTime:    isoTime(t, "2019-02-26T19:42:21Z"),
				Region:          "us-east-1",
				Resources:       []string{docExecArn},
				ExecutionArn:    docExecArn,
				StateMachineArn: docSMArn,
				Name:            "execution-name",
				Status:          tt.status,
				StartDate:       epochMs(tt.startMs),
				Input:           json.RawMessage(`{}`),
			}
			if tt.stopMs != 0 {
				want.StopDate = epochMs(tt.stopMs)
			}
			if !tt.wantOutputMissing {
				want.Output = json.RawMessage(tt.output)
			}
			assert.Equal(t, want, sc)
		})
	}
}

func TestDecodeStatusChange_CurrentShape(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, sc domain.StatusChange)
	}{
		{"agent-running.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecRunning, sc.Status)
			assert.Equal(t, epochMs(1730716200000), sc.StartDate)
			assert.True(t, sc.StopDate.IsZero())
			assert.Equal(t, agentInput, string(sc.Input))
			assert.Nil(t, sc.Output)
			assert.Equal(t, ptrTo(true), sc.InputIncluded)
			assert.Nil(t, sc.OutputIncluded)
			assert.Equal(t, "NOT_REDRIVABLE", sc.RedriveStatus)
			assert.Equal(t, "Execution is RUNNING and cannot be redriven", sc.RedriveStatusReason)
			assert.Equal(t, "abc-123-def", sc.InputValue("session_id"))
		}},
		{"agent-succeeded.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecSucceeded, sc.Status)
			assert.Equal(t, epochMs(1730716545678), sc.StopDate)
			assert.JSONEq(t, `{"summary":"done"}`, string(sc.Output))
			assert.Equal(t, ptrTo(true), sc.OutputIncluded)
		}},
		{"agent-failed.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecFailed, sc.Status)
			assert.Equal(t, "States.TaskFailed", sc.Error)
			assert.Equal(t, "Failed to invoke AgentCore: Timeout", sc.Cause)
			assert.Equal(t, "REDRIVABLE", sc.RedriveStatus)
		}},
		{"agent-timed-out.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecTimedOut, sc.Status)
			assert.Equal(t, "States.Timeout", sc.Error)
			assert.Empty(t, sc.Cause, "cause: null")
		}},
		{"agent-aborted.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecAborted, sc.Status)
			assert.Empty(t, sc.Error, "error: null")
			assert.Equal(t, "Stopped by operator", sc.Cause)
		}},
		{"agent-pending-redrive.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecPendingRedrive, sc.Status)
			assert.Equal(t, epochMs(1730720000000), sc.RedriveDate)
			assert.Equal(t, 0, sc.RedriveCount)
		}},
		{"agent-redriven-running.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, domain.ExecRunning, sc.Status)
			assert.Equal(t, 1, sc.RedriveCount)
			assert.Equal(t, epochMs(1730720000123), sc.RedriveDate)
		}},
		{"agent-input-not-included.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Nil(t, sc.Input)
			assert.Equal(t, ptrTo(false), sc.InputIncluded)
			assert.Equal(t, "", sc.InputValue("session_id"))
		}},
		{"agent-pretty-input.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, "{\n  \"sessionId\": \"abc-123-def\",\n  \"agentName\": \"research-bot\"\n}", string(sc.Input))
			assert.Equal(t, "abc-123-def", sc.InputValue("session_id", "sessionId"))
			assert.Equal(t, "research-bot", sc.InputValue("agentName"))
		}},
		{"agent-bare-string-input.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, `"hello"`, string(sc.Input))
			assert.Equal(t, "", sc.InputValue("session_id"))
		}},
		{"agent-float-dates.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, epochMs(1730716200000), sc.StartDate)
		}},
		{"agent-alias.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Equal(t, agentSM+":3", sc.StateMachineVersionArn)
			assert.Equal(t, agentSM+":prod", sc.StateMachineAliasArn)
		}},
		{"emulator-no-account.json", func(t *testing.T, sc domain.StatusChange) {
			assert.Empty(t, sc.Account)
			assert.Equal(t, agentArn, sc.ExecutionArn)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sc, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/"+tt.file))
			require.NoError(t, err)
			assert.Equal(t, agentArn, sc.ExecutionArn)
			assert.Equal(t, agentSM, sc.StateMachineArn)
			assert.Equal(t, "run-7f3c", sc.Name)
			assert.Equal(t, isoTime(t, "2024-11-04T10:30:00Z"), sc.EnvelopeTime)
			tt.check(t, sc)
		})
	}
}

func TestDecodeStatusChange_SNS(t *testing.T) {
	raw, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/agent-succeeded.json"))
	require.NoError(t, err)
	for _, file := range []string{"sns-http-sqs.json", "sns-lambda.json", "sns-object-message.json"} {
		t.Run(file, func(t *testing.T) {
			sc, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/"+file))
			require.NoError(t, err)
			assert.Equal(t, raw, sc)
		})
	}
}

func TestDecodeStatusChange_Tolerated(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(env, detail map[string]any)
		check func(t *testing.T, sc domain.StatusChange)
	}{
		{"unknown status kept", func(_, d map[string]any) { d["status"] = "PAUSED" },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, domain.ExecStatus("PAUSED"), sc.Status) }},
		{"unknown keys everywhere", func(e, d map[string]any) { e["replay-name"] = "r1"; d["traceHeader"] = "Root=1"; d["mapRunArn"] = nil },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, domain.ExecRunning, sc.Status) }},
		{"dates missing", func(_, d map[string]any) { delete(d, "startDate"); delete(d, "stopDate") },
			func(t *testing.T, sc domain.StatusChange) { assert.True(t, sc.StartDate.IsZero()) }},
		{"date 0 is no date", func(_, d map[string]any) { d["stopDate"] = 0 },
			func(t *testing.T, sc domain.StatusChange) { assert.True(t, sc.StopDate.IsZero()) }},
		{"fraction of a millisecond dropped", func(_, d map[string]any) { d["startDate"] = 1730716200000.75 },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, epochMs(1730716200000), sc.StartDate) }},
		{"input as an object", func(_, d map[string]any) { d["input"] = map[string]any{"sessionId": "s-1"} },
			func(t *testing.T, sc domain.StatusChange) {
				assert.JSONEq(t, `{"sessionId":"s-1"}`, string(sc.Input))
				assert.Equal(t, "s-1", sc.InputValue("session_id", "sessionId"))
			}},
		{"input not JSON kept as a string", func(_, d map[string]any) { d["input"] = "not json" },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, `"not json"`, string(sc.Input)) }},
		{"input missing, details null", func(_, d map[string]any) { delete(d, "input"); d["inputDetails"] = nil },
			func(t *testing.T, sc domain.StatusChange) { assert.Nil(t, sc.Input); assert.Nil(t, sc.InputIncluded) }},
		{"redriveCount null", func(_, d map[string]any) { d["redriveCount"] = nil },
			func(t *testing.T, sc domain.StatusChange) { assert.Zero(t, sc.RedriveCount) }},
		{"numeric session id", func(_, d map[string]any) { d["input"] = `{"session_id": 42}` },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, "42", sc.InputValue("session_id")) }},
		{"detail as a JSON string", func(e, d map[string]any) { b, _ := json.Marshal(d); e["detail"] = string(b) },
			func(t *testing.T, sc domain.StatusChange) { assert.Equal(t, agentArn, sc.ExecutionArn) }},
		{"no time", func(e, _ map[string]any) { delete(e, "time") },
			func(t *testing.T, sc domain.StatusChange) { assert.True(t, sc.EnvelopeTime.IsZero()) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, err := domain.DecodeStatusChange(editEnvelope(t, tt.edit))
			require.NoError(t, err)
			tt.check(t, sc)
		})
	}
}

// editEnvelope returns agent-running.json changed by edit.
func editEnvelope(t *testing.T, edit func(env, detail map[string]any)) []byte {
	t.Helper()
	var env map[string]any
	require.NoError(t, json.Unmarshal(readTestdata(t, "eventbridge/agent-running.json"), &env))
	edit(env, env["detail"].(map[string]any))
	b, err := json.Marshal(env)
	require.NoError(t, err)
	return b
}

// snsWrap wraps an envelope in an SNS notification.
func snsWrap(t *testing.T, env []byte) []byte {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"Type": "Notification", "MessageId": "m-1", "TopicArn": "arn:aws:sns:us-east-1:123456789012:t",
		"Message": string(env), "Timestamp": "2024-11-04T10:30:01.000Z", "SignatureVersion": "1",
		"Signature": "x", "SigningCertURL": "https://example", "UnsubscribeURL": "https://example",
	})
	require.NoError(t, err)
	return b
}

func TestDecodeStatusChange_Invalid(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(env, detail map[string]any)
		fields []string
		msgs   []string
	}{
		{"wrong detail-type", func(e, _ map[string]any) { e["detail-type"] = "EC2 Instance State-change Notification" },
			[]string{"detail-type"}, []string{`detail-type: must be "Step Functions Execution Status Change"`}},
		{"detail-type missing", func(e, _ map[string]any) { delete(e, "detail-type") },
			[]string{"detail-type"}, []string{"detail-type: is missing"}},
		{"other source", func(e, _ map[string]any) { e["source"] = "my.simulator" },
			[]string{"source"}, []string{`source: must be "aws.states"`, `found "my.simulator"`}},
		{"source missing", func(e, _ map[string]any) { delete(e, "source") },
			[]string{"source"}, []string{"source: is missing"}},
		{"detail missing", func(e, _ map[string]any) { delete(e, "detail") },
			[]string{"detail"}, []string{"detail: is missing"}},
		{"detail an array", func(e, _ map[string]any) { e["detail"] = []any{} },
			[]string{"detail"}, []string{"detail: must be a JSON object, found array"}},
		{"required detail fields missing", func(_, d map[string]any) {
			delete(d, "executionArn")
			delete(d, "stateMachineArn")
			delete(d, "name")
			delete(d, "status")
		}, []string{"detail.executionArn", "detail.stateMachineArn", "detail.name", "detail.status"},
			[]string{"detail.executionArn: is missing", "detail.status: is missing"}},
		{"executionArn empty", func(_, d map[string]any) { d["executionArn"] = "" },
			[]string{"detail.executionArn"}, []string{"detail.executionArn: is empty"}},
		{"status a number", func(_, d map[string]any) { d["status"] = 1 },
			[]string{"detail.status"}, []string{"detail.status: must be a string, found number"}},
		{"startDate a string", func(_, d map[string]any) { d["startDate"] = "2024-11-04T10:30:00Z" },
			[]string{"detail.startDate"}, []string{"detail.startDate: must be epoch milliseconds (a JSON number), found string"}},
		{"stopDate negative", func(_, d map[string]any) { d["stopDate"] = -5 },
			[]string{"detail.stopDate"}, []string{"detail.stopDate: must be epoch milliseconds, found a negative number"}},
		{"redriveDate after year 9999", func(_, d map[string]any) { d["redriveDate"] = 1e20 },
			[]string{"detail.redriveDate"}, []string{"detail.redriveDate: must be epoch milliseconds", "after year 9999"}},
		{"redriveCount negative", func(_, d map[string]any) { d["redriveCount"] = -1 },
			[]string{"detail.redriveCount"}, []string{"detail.redriveCount: must not be negative"}},
		{"redriveCount a string", func(_, d map[string]any) { d["redriveCount"] = "1" },
			[]string{"detail.redriveCount"}, []string{"detail.redriveCount: must be a number, found string"}},
		{"included not a boolean", func(_, d map[string]any) { d["inputDetails"] = map[string]any{"included": "yes"} },
			[]string{"detail.inputDetails.included"}, []string{"detail.inputDetails.included: must be a boolean, found string"}},
		{"outputDetails a number", func(_, d map[string]any) { d["outputDetails"] = 3 },
			[]string{"detail.outputDetails"}, []string{"detail.outputDetails: must be a JSON object, found number"}},
		{"error an object", func(_, d map[string]any) { d["error"] = map[string]any{} },
			[]string{"detail.error"}, []string{"detail.error: must be a string, found object"}},
		{"bad time", func(e, _ map[string]any) { e["time"] = "Tuesday" },
			[]string{"time"}, []string{`time: is not an ISO 8601 timestamp: "Tuesday"`}},
		{"resources not strings", func(e, _ map[string]any) { e["resources"] = []any{"a", 1} },
			[]string{"resources[1]"}, []string{"resources[1]: must be a string, found number"}},
		{"everything at once", func(e, d map[string]any) {
			e["detail-type"] = "x"
			d["startDate"] = "x"
			d["stopDate"] = "y"
			delete(d, "name")
		}, []string{"detail-type", "detail.startDate", "detail.stopDate", "detail.name"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := editEnvelope(t, tt.edit)
			_, err := domain.DecodeStatusChange(env)
			requireInvalid(t, err, tt.fields, tt.msgs...)

			t.Run("in SNS", func(t *testing.T) {
				_, err := domain.DecodeStatusChange(snsWrap(t, env))
				prefixed := make([]string, len(tt.fields))
				for i, f := range tt.fields {
					prefixed[i] = "Message." + f
				}
				msgs := make([]string, len(tt.msgs))
				for i, m := range tt.msgs {
					msgs[i] = m
					if strings.HasPrefix(m, tt.fields[0]) {
						msgs[i] = "Message." + m
					}
				}
				requireInvalid(t, err, prefixed, msgs...)
			})
		})
	}
}

func TestDecodeStatusChange_InvalidWrapper(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		fields []string
		msgs   []string
	}{
		{"SNS message not JSON", `{"Type":"Notification","TopicArn":"t","Message":"hello"}`,
			[]string{"Message"}, []string{"Message: must be a JSON object (or a string holding one)"}},
		{"SNS message malformed", `{"Type":"Notification","TopicArn":"t","Message":"{\"detail\":"}`,
			[]string{"Message"}, []string{"Message: holds malformed JSON"}},
		{"SNS subscription confirmation", `{"Type":"SubscriptionConfirmation","TopicArn":"t","Message":"You have chosen to subscribe"}`,
			[]string{"Type"}, []string{`Type: must be "Notification", found "SubscriptionConfirmation"`}},
		{"SNS message with startDate as a string",
			`{"Type":"Notification","TopicArn":"t","Message":"{\"detail-type\":\"Step Functions Execution Status Change\",\"source\":\"aws.states\",\"detail\":{\"executionArn\":\"e\",\"stateMachineArn\":\"s\",\"name\":\"n\",\"status\":\"RUNNING\",\"startDate\":\"x\"}}"}`,
			[]string{"Message.detail.startDate"}, []string{"Message.detail.startDate: must be epoch milliseconds"}},
		{"not an object", `"x"`, nil, []string{"must be a JSON object, found string"}},
		{"malformed", `{"detail-type":`, nil, []string{"malformed JSON"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := domain.DecodeStatusChange([]byte(tt.in))
			requireInvalid(t, err, tt.fields, tt.msgs...)
		})
	}
}

func TestStatusChangeInputValue(t *testing.T) {
	tests := []struct {
		input string
		keys  []string
		want  string
	}{
		{`{"session_id":"a","sessionId":"b"}`, []string{"session_id", "sessionId"}, "a"},
		{`{"session_id":"","sessionId":"b"}`, []string{"session_id", "sessionId"}, "b"},
		{`{"session_id":null,"sessionId":"b"}`, []string{"session_id", "sessionId"}, "b"},
		{`{"session_id":{"id":"x"}}`, []string{"session_id"}, ""},
		{`{"session_id":12.5}`, []string{"session_id"}, "12.5"},
		{`{"nested":{"session_id":"x"}}`, []string{"session_id"}, ""},
		{`["session_id"]`, []string{"session_id"}, ""},
		{``, []string{"session_id"}, ""},
		{`{"a":"\u00e9\n"}`, []string{"a"}, "é\n"},
	}
	for _, tt := range tests {
		t.Run(tt.input, func(t *testing.T) {
			sc := domain.StatusChange{Input: json.RawMessage(tt.input)}
			assert.Equal(t, tt.want, sc.InputValue(tt.keys...))
		})
	}
}

func TestDecodeStatusChange_AllTestdata(t *testing.T) {
	// Every envelope under testdata/eventbridge decodes, and the envelope time stays the
	// envelope's, to the second.
	for _, name := range testdataFiles(t, "eventbridge/*.json") {
		t.Run(filepath.Base(name), func(t *testing.T) {
			sc, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/"+filepath.Base(name)))
			require.NoError(t, err)
			assert.Equal(t, sc.EnvelopeTime, sc.EnvelopeTime.Truncate(time.Second))
		})
	}
}
