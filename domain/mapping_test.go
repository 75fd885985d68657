package domain_test

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

// update rewrites the golden files under testdata/golden instead of comparing with them.
var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// resolverFunc adapts a function to domain.AgentNameResolver.
type resolverFunc func(ctx context.Context, stateMachineArn string) (string, error)

func (f resolverFunc) ResolveAgentName(ctx context.Context, arn string) (string, error) {
	return f(ctx, arn)
}

func decodeSC(t *testing.T, file string) domain.StatusChange {
	t.Helper()
	sc, err := domain.DecodeStatusChange(readTestdata(t, "eventbridge/"+file))
	require.NoError(t, err)
	return sc
}

func mapSC(t *testing.T, sc domain.StatusChange) domain.Event {
	t.Helper()
	e, err := domain.MapStatusChange(t.Context(), sc, nil, domain.MappingConfig{})
	require.NoError(t, err)
	return e
}

// Each status change under testdata/eventbridge maps to the journal item in
// testdata/golden/mapping (go test ./domain -run TestMapStatusChange_Golden -update).
func TestMapStatusChange_Golden(t *testing.T) {
	for _, name := range testdataFiles(t, "eventbridge/*.json") {
		base := filepath.Base(name)
		t.Run(base, func(t *testing.T) {
			e := mapSC(t, decodeSC(t, base))
			got, err := json.MarshalIndent(e.Item(), "", "  ")
			require.NoError(t, err)
			got = append(got, '\n')

			golden := filepath.Join("testdata", "golden", "mapping", base)
			if *updateGolden {
				require.NoError(t, os.MkdirAll(filepath.Dir(golden), 0o755))
				require.NoError(t, os.WriteFile(golden, got, 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			assert.Equal(t, string(want), string(got))

			// What is journaled reads back as the same event.
			back, err := domain.DecodeJournalItemJSON(got)
			require.NoError(t, err)
			requireSameEvent(t, e, back)
		})
	}
}

func TestMapStatusChange_SessionID(t *testing.T) {
	tests := []struct {
		name  string
		input string
		cfg   domain.MappingConfig
		want  string
	}{
		{"session_id", `{"session_id":"s1","sessionId":"s2"}`, domain.MappingConfig{}, "s1"},
		{"sessionId", `{"sessionId":"s2"}`, domain.MappingConfig{}, "s2"},
		{"empty session_id falls through", `{"session_id":"","sessionId":"s2"}`, domain.MappingConfig{}, "s2"},
		{"no input field: execution name", `{"prompt":"x"}`, domain.MappingConfig{}, "run-7f3c"},
		{"input not an object: execution name", `"hello"`, domain.MappingConfig{}, "run-7f3c"},
		{"no input: execution name", ``, domain.MappingConfig{}, "run-7f3c"},
		{"configured keys", `{"session_id":"s1","conversation":"c9"}`,
			domain.MappingConfig{SessionIDKeys: []string{"conversation"}}, "c9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := decodeSC(t, "agent-running.json")
			sc.Input = json.RawMessage(tt.input)
			e, err := domain.MapStatusChange(t.Context(), sc, nil, tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, tt.want, e.SessionID)
			assert.Equal(t, "SESSION#"+tt.want, e.PK())
		})
	}
}

func TestMapStatusChange_AgentName(t *testing.T) {
	errThrottled := errors.New("ThrottlingException")
	fixed := func(name string, err error) domain.AgentNameResolver {
		return resolverFunc(func(context.Context, string) (string, error) { return name, err })
	}
	tests := []struct {
		name     string
		resolver domain.AgentNameResolver
		input    string
		smArn    string
		execArn  string
		cfg      domain.MappingConfig
		want     string
	}{
		{"resolver wins", fixed("tagged-agent", nil), `{"agentName":"from-input"}`, agentSM, agentArn, domain.MappingConfig{}, "tagged-agent"},
		{"resolver has none: input agentName", fixed("", nil), `{"agentName":"from-input","agent_name":"x"}`, agentSM, agentArn, domain.MappingConfig{}, "from-input"},
		{"resolver fails: input agent_name", fixed("", errThrottled), `{"agent_name":"from-input"}`, agentSM, agentArn, domain.MappingConfig{}, "from-input"},
		{"resolver fails with a name: not used", fixed("half", errThrottled), `{}`, agentSM, agentArn, domain.MappingConfig{}, "research-agent"},
		{"no resolver, no input: state machine name", nil, `{}`, agentSM, agentArn, domain.MappingConfig{}, "research-agent"},
		{"configured input keys", nil, `{"agentName":"a","bot":"b"}`, agentSM, agentArn, domain.MappingConfig{AgentNameKeys: []string{"bot"}}, "b"},
		{"alias-qualified state machine ARN", nil, ``, agentSM + ":prod", agentArn, domain.MappingConfig{}, "research-agent"},
		{"unreadable state machine ARN: execution ARN", nil, ``, "sm-1", agentArn, domain.MappingConfig{}, "research-agent"},
		{"express execution ARN", nil, ``, "", "arn:aws:states:us-east-1:123456789012:express:fast-agent:e1:r1", domain.MappingConfig{}, "fast-agent"},
		{"nothing readable: the state machine ARN as is", nil, ``, "local-sm", "exec-1", domain.MappingConfig{}, "local-sm"},
		{"nothing at all", nil, ``, "", "exec-1", domain.MappingConfig{}, domain.UnknownAgentName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := decodeSC(t, "agent-running.json")
			sc.Input = json.RawMessage(tt.input)
			sc.StateMachineArn, sc.ExecutionArn = tt.smArn, tt.execArn
			e, err := domain.MapStatusChange(t.Context(), sc, tt.resolver, tt.cfg)
			require.NoError(t, err)
			assert.Equal(t, tt.want, e.Exec.AgentName)
		})
	}
}

func TestMapStatusChange_ResolverGetsStateMachineArn(t *testing.T) {
	var asked []string
	r := resolverFunc(func(_ context.Context, arn string) (string, error) {
		asked = append(asked, arn)
		return "x", nil
	})
	_, err := domain.MapStatusChange(t.Context(), decodeSC(t, "agent-alias.json"), r, domain.MappingConfig{})
	require.NoError(t, err)
	assert.Equal(t, []string{agentSM}, asked)
}

func TestMapStatusChange_CancelledDuringResolve(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	r := resolverFunc(func(ctx context.Context, _ string) (string, error) {
		cancel()
		return "", ctx.Err()
	})
	_, err := domain.MapStatusChange(ctx, decodeSC(t, "agent-running.json"), r, domain.MappingConfig{})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, domain.ErrInvalid)
}

func TestMapStatusChange_StatusTimestampAndErrorMessage(t *testing.T) {
	tests := []struct {
		file   string
		status domain.Status
		at     int64
		errMsg string
	}{
		{"agent-running.json", domain.StatusExecutionRunning, 1730716200000, ""},
		{"agent-succeeded.json", domain.StatusExecutionSucceeded, 1730716545678, ""},
		{"agent-failed.json", domain.StatusExecutionFailed, 1730716202456, "States.TaskFailed: Failed to invoke AgentCore: Timeout"},
		{"agent-timed-out.json", domain.StatusExecutionTimedOut, 1730719800000, "States.Timeout"},
		{"agent-aborted.json", domain.StatusExecutionAborted, 1730716300000, "Stopped by operator"},
		{"agent-pending-redrive.json", domain.StatusExecutionPendingRedrive, 1730720000000, ""},
		{"agent-redriven-running.json", domain.StatusExecutionRunning, 1730720000123, ""},
		{"aws-doc-failed.json", domain.StatusExecutionFailed, 1551225151881, ""},
		{"aws-doc-running.json", domain.StatusExecutionRunning, 1551225271984, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			sc := decodeSC(t, tt.file)
			e := mapSC(t, sc)
			assert.Equal(t, tt.status, e.Status)
			assert.Equal(t, epochMs(tt.at), e.Timestamp)
			assert.Equal(t, tt.errMsg, e.ErrorMessage)
			assert.True(t, strings.HasPrefix(e.SK, "EVENT#"+domain.FormatTime(epochMs(tt.at))+"#"+string(sc.Status)+"#"), e.SK)
			assert.Equal(t, domain.ExecutionSortKey(epochMs(tt.at), sc.Status, sc.RedriveCount, sc.ExecutionArn), e.SK)

			assert.Equal(t, sc.ExecutionArn, e.Exec.ExecutionArn)
			assert.Equal(t, sc.StateMachineArn, e.Exec.StateMachineArn)
			assert.Equal(t, sc.Name, e.Exec.ExecutionName)
			assert.Equal(t, sc.StartDate, e.Exec.StartDate)
			assert.Equal(t, sc.StopDate, e.Exec.StopDate)
			assert.Equal(t, sc.RedriveDate, e.Exec.RedriveDate)
			assert.Equal(t, sc.Error, e.Exec.Error)
			assert.Equal(t, sc.Cause, e.Exec.Cause)
			assert.Equal(t, sc.RedriveCount, e.Exec.RedriveCount)
			assert.Equal(t, sc.RedriveStatus, e.Exec.RedriveStatus)
			assert.Equal(t, sc.ID, e.Exec.SourceEventID)
			assert.Equal(t, sc.InputIncluded, e.Exec.InputIncluded)
			assert.Equal(t, sc.OutputIncluded, e.Exec.OutputIncluded)
		})
	}
}

func TestMapStatusChange_TimestampFallbacks(t *testing.T) {
	tests := []struct {
		name string
		edit func(sc *domain.StatusChange)
		want int64
	}{
		{"terminal without stopDate: startDate", func(sc *domain.StatusChange) {
			sc.Status = domain.ExecFailed
		}, 1730716200000},
		{"redriven RUNNING without redriveDate: startDate", func(sc *domain.StatusChange) {
			sc.RedriveCount = 2
		}, 1730716200000},
		{"RUNNING with a redriveDate but never redriven: startDate", func(sc *domain.StatusChange) {
			sc.RedriveDate = epochMs(1730720000000)
		}, 1730716200000},
		{"PENDING_REDRIVE without redriveDate: startDate", func(sc *domain.StatusChange) {
			sc.Status = domain.ExecPendingRedrive
		}, 1730716200000},
		{"unknown status: stopDate", func(sc *domain.StatusChange) {
			sc.Status = "PAUSED"
			sc.StopDate = epochMs(1730716500000)
		}, 1730716500000},
		{"no dates at all: envelope time", func(sc *domain.StatusChange) {
			sc.StartDate, sc.StopDate, sc.RedriveDate = time.Time{}, time.Time{}, time.Time{}
			sc.EnvelopeTime = epochMs(1730714400000)
		}, 1730714400000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := decodeSC(t, "agent-running.json")
			tt.edit(&sc)
			e := mapSC(t, sc)
			assert.Equal(t, epochMs(tt.want), e.Timestamp)
		})
	}
}

func TestMapStatusChange_Invalid(t *testing.T) {
	tests := []struct {
		name   string
		edit   func(sc *domain.StatusChange)
		fields []string
	}{
		{"no execution ARN", func(sc *domain.StatusChange) { sc.ExecutionArn = "" }, []string{"detail.executionArn"}},
		{"no status", func(sc *domain.StatusChange) { sc.Status = "" }, []string{"detail.status"}},
		{"no session id", func(sc *domain.StatusChange) { sc.Name = ""; sc.Input = nil }, []string{"detail.name"}},
		{"session id too long", func(sc *domain.StatusChange) {
			sc.Input = json.RawMessage(`{"session_id":"` + strings.Repeat("s", 2041) + `"}`)
		}, []string{"detail.input"}},
		{"status too long", func(sc *domain.StatusChange) { sc.Status = domain.ExecStatus(strings.Repeat("S", 1000)) }, []string{"detail.status"}},
		{"no date", func(sc *domain.StatusChange) {
			sc.StartDate, sc.StopDate, sc.RedriveDate, sc.EnvelopeTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		}, []string{"detail.startDate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := decodeSC(t, "agent-running.json")
			tt.edit(&sc)
			_, err := domain.MapStatusChange(t.Context(), sc, nil, domain.MappingConfig{})
			requireInvalid(t, err, tt.fields)
		})
	}
}

// EventBridge delivers at least once: a redelivery, even with another event id and time,
// or through SNS rather than directly, maps to the same item key.
func TestMapStatusChange_StableUnderRedelivery(t *testing.T) {
	for _, file := range []string{"agent-running.json", "agent-failed.json", "agent-redriven-running.json", "agent-pending-redrive.json", "aws-doc-succeeded.json"} {
		t.Run(file, func(t *testing.T) {
			first := mapSC(t, decodeSC(t, file))

			sc := decodeSC(t, file)
			sc.ID = "another-delivery"
			sc.EnvelopeTime = sc.EnvelopeTime.Add(97e9)
			again := mapSC(t, sc)
			assert.Equal(t, first.Key(), again.Key())
			assert.Equal(t, first.SK, again.SK)
			assert.Equal(t, "another-delivery", again.Exec.SourceEventID)

			viaSNS, err := domain.DecodeStatusChange(snsWrap(t, readTestdata(t, "eventbridge/"+file)))
			require.NoError(t, err)
			fromSNS := mapSC(t, viaSNS)
			assert.Equal(t, first.Key(), fromSNS.Key())
		})
	}
}

// Distinct status changes never share an item key, even within one millisecond.
func TestMapStatusChange_DistinctKeys(t *testing.T) {
	keys := map[string]string{}
	add := func(t *testing.T, what string, sc domain.StatusChange) {
		t.Helper()
		e := mapSC(t, sc)
		if prev, dup := keys[e.Key()]; dup {
			t.Fatalf("%s and %s share the key %q", prev, what, e.Key())
		}
		keys[e.Key()] = what
	}
	for _, name := range testdataFiles(t, "eventbridge/agent-*.json") {
		base := filepath.Base(name)
		switch base {
		case "agent-running.json", "agent-failed.json", "agent-succeeded.json", "agent-timed-out.json",
			"agent-aborted.json", "agent-pending-redrive.json", "agent-redriven-running.json":
			add(t, base, decodeSC(t, base))
		}
	}

	// Every status of one execution in the same millisecond (one no file uses).
	at := epochMs(1730716999999)
	for _, st := range domain.ExecStatuses {
		sc := decodeSC(t, "agent-running.json")
		sc.Status, sc.StartDate, sc.StopDate, sc.RedriveDate = st, at, at, at
		add(t, "same ms "+string(st), sc)
	}
	// The same status of another execution of the same session, same millisecond.
	sc := decodeSC(t, "agent-running.json")
	sc.StartDate = at
	sc.ExecutionArn += "-retry"
	add(t, "other execution", sc)
	// The same status of another redrive attempt, same millisecond.
	sc = decodeSC(t, "agent-running.json")
	sc.StartDate, sc.RedriveDate, sc.RedriveCount = at, at, 3
	add(t, "redrive 3", sc)
}

func TestStateMachineName(t *testing.T) {
	tests := []struct{ arn, want string }{
		{"arn:aws:states:us-east-1:123456789012:stateMachine:research-agent", "research-agent"},
		{"arn:aws:states:us-east-1:123456789012:stateMachine:research-agent:prod", "research-agent"},
		{"arn:aws:states:us-east-1:123456789012:stateMachine:research-agent:3", "research-agent"},
		{"arn:aws-cn:states:cn-north-1:123456789012:stateMachine:sm", "sm"},
		{"arn:aws:states:us-east-1:123456789012:execution:research-agent:run-7f3c", "research-agent"},
		{"arn:aws:states:us-east-1:123456789012:express:fast-agent:e1:r1", "fast-agent"},
		{"arn:aws:states:us-east-1:123456789012:execution:orders/getOrders:da4e9fc7", "orders/getOrders"},
		{"arn:aws:states:us-east-1:123456789012:activity:a", ""},
		{"arn:aws:lambda:us-east-1:123456789012:function:f", ""},
		{"arn:aws:states:us-east-1:123456789012:stateMachine:", ""},
		{"state-machine", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.arn, func(t *testing.T) {
			assert.Equal(t, tt.want, domain.StateMachineName(tt.arn))
		})
	}
}

func TestMappingConfigSetDefaults(t *testing.T) {
	var c domain.MappingConfig
	c.SetDefaults()
	assert.Equal(t, []string{"session_id", "sessionId"}, c.SessionIDKeys)
	assert.Equal(t, []string{"agentName", "agent_name"}, c.AgentNameKeys)

	c = domain.MappingConfig{SessionIDKeys: []string{"sid"}}
	c.SetDefaults()
	assert.Equal(t, []string{"sid"}, c.SessionIDKeys)
}
