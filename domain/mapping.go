package domain

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// UnknownAgentName is the agent name of a status change that names no state machine at
// all; agent names are index keys and are never empty.
const UnknownAgentName = "unknown"

// MappingConfig says where MapStatusChange finds a session id and an agent name in an
// execution's input.
type MappingConfig struct {
	// SessionIDKeys are the top-level input fields tried, in order, for the session id.
	// Default: session_id, sessionId.
	SessionIDKeys []string
	// AgentNameKeys are the top-level input fields tried, in order, for the agent name
	// when the resolver has none. Default: agentName, agent_name.
	AgentNameKeys []string
}

// SetDefaults fills the fields left empty.
func (c *MappingConfig) SetDefaults() {
	if len(c.SessionIDKeys) == 0 {
		c.SessionIDKeys = []string{"session_id", "sessionId"}
	}
	if len(c.AgentNameKeys) == 0 {
		c.AgentNameKeys = []string{"agentName", "agent_name"}
	}
}

// AgentNameResolver finds the agent name of a state machine, in AWS mode from its tags.
// Implementations are safe for concurrent use and cache what they look up. They return
// "" and no error when the state machine has no agent name; an error means the lookup
// failed (throttled, denied, cancelled ctx), and MapStatusChange then falls back to the
// input and the ARN.
type AgentNameResolver interface {
	ResolveAgentName(ctx context.Context, stateMachineArn string) (string, error)
}

// MapStatusChange turns a status change into the journal event that records it. It is
// pure but for resolver, which may be nil.
//
//   - Session id: the input's first SessionIDKeys field, else the execution name.
//   - Agent name: the resolver's answer if non-empty (a resolver error is not fatal: the
//     next sources are tried), else the input's first AgentNameKeys field, else the state
//     machine's name from its ARN (or from the execution ARN).
//   - Status: EXECUTION_{status}; unknown statuses are kept.
//   - Timestamp: RUNNING uses redriveDate when the execution was redriven, else
//     startDate; PENDING_REDRIVE uses redriveDate; terminal and unknown statuses use
//     stopDate. A missing date falls back to startDate, then to the envelope time.
//   - SK: ExecutionSortKey, stable under redelivery (it depends on the detail only, never
//     on the envelope id) and distinct for distinct status changes.
//   - ErrorMessage, for FAILED, TIMED_OUT and ABORTED: "error: cause", or whichever of
//     the two is present.
//
// An error, joined *FieldError matching ErrInvalid, means the status change lacks what a
// journal event needs (an execution ARN, a status, a session id, any date); if ctx is done
// after a resolver error, the ctx error is returned, so that a cancelled ingest does not
// journal a fallback agent name.
func MapStatusChange(ctx context.Context, sc StatusChange, resolver AgentNameResolver, cfg MappingConfig) (Event, error) {
	cfg.SetDefaults()
	fe := newFieldErrors()
	if sc.ExecutionArn == "" {
		fe.add("detail.executionArn", "is missing")
	}
	if sc.Status == "" {
		fe.add("detail.status", "is missing")
	}
	input := inputFields(sc.Input)
	// The session id and agent name the input may hold are ids: bytes replaced on
	// decoding would merge different sessions.
	checkIDs(input, fe.nested("detail.input."), append(append([]string(nil), cfg.SessionIDKeys...), cfg.AgentNameKeys...)...)
	sessionField, sessionID := "detail.input", lookupInput(input, cfg.SessionIDKeys)
	if sessionID == "" {
		sessionField, sessionID = "detail.name", sc.Name
	}
	switch {
	case sessionID == "":
		fe.add("detail.name", "is missing, and the input has no "+strings.Join(cfg.SessionIDKeys, " or "))
	case len(SessionKeyPrefix)+len(sessionID) > maxPartitionKeyBytes:
		fe.add(sessionField, "holds a session id too long for a partition key (over 2048 bytes)")
	}
	at := statusChangeTime(&sc)
	if at.IsZero() {
		fe.add("detail.startDate", "is missing, and the event has no other date to time the status change by")
	}
	sk := ExecutionSortKey(at, sc.Status, sc.RedriveCount, sc.ExecutionArn)
	if len(sk) > maxSortKeyBytes {
		fe.add("detail.status", "is too long for a sort key: "+quoteValue(string(sc.Status)))
	}
	if err := fe.err(); err != nil {
		return Event{}, fmt.Errorf("map status change of execution %q: %w", sc.ExecutionArn, err)
	}

	agent, err := agentName(ctx, &sc, resolver, input, cfg)
	if err != nil {
		return Event{}, fmt.Errorf("map status change of execution %q: %w", sc.ExecutionArn, err)
	}

	e := Event{
		SessionID: sessionID,
		SK:        sk,
		Status:    sc.Status.JournalStatus(),
		Timestamp: at,
		Exec: Execution{
			ExecutionArn:    sc.ExecutionArn,
			StateMachineArn: sc.StateMachineArn,
			ExecutionName:   sc.Name,
			AgentName:       agent,
			StartDate:       journalDate(sc.StartDate),
			StopDate:        journalDate(sc.StopDate),
			RedriveDate:     journalDate(sc.RedriveDate),
			Error:           sc.Error,
			Cause:           sc.Cause,
			RedriveCount:    sc.RedriveCount,
			RedriveStatus:   sc.RedriveStatus,
			SourceEventID:   sc.ID,
			InputIncluded:   cloneBool(sc.InputIncluded),
			OutputIncluded:  cloneBool(sc.OutputIncluded),
		},
	}
	switch sc.Status {
	case ExecFailed, ExecTimedOut, ExecAborted:
		e.ErrorMessage = errorMessage(sc.Error, sc.Cause)
	}
	return e, nil
}

// statusChangeTime is when the status change happened; zero if the event has no date.
func statusChangeTime(sc *StatusChange) time.Time {
	var at time.Time
	switch {
	case sc.Status == ExecRunning:
		if sc.RedriveCount > 0 {
			at = sc.RedriveDate
		}
	case sc.Status == ExecPendingRedrive:
		at = sc.RedriveDate
	default: // terminal, or unknown: a status agentwatch does not know most likely ends something
		at = sc.StopDate
	}
	if at.IsZero() {
		at = sc.StartDate
	}
	if at.IsZero() {
		// Last resort: the envelope time is to the second and is when EventBridge got the
		// event, not when the status changed.
		at = sc.EnvelopeTime
	}
	return journalDate(at)
}

// journalDate is t as the journal keeps it: UTC, to the millisecond.
func journalDate(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Millisecond)
}

// agentName resolves the agent name; see MapStatusChange.
func agentName(ctx context.Context, sc *StatusChange, resolver AgentNameResolver, input map[string]json.RawMessage, cfg MappingConfig) (string, error) {
	if resolver != nil && sc.StateMachineArn != "" {
		name, err := resolver.ResolveAgentName(ctx, sc.StateMachineArn)
		if err == nil && name != "" {
			return name, nil
		}
		if err != nil {
			if cerr := ctx.Err(); cerr != nil {
				return "", fmt.Errorf("resolve agent name of %s: %w", sc.StateMachineArn, cerr)
			}
		}
	}
	if name := lookupInput(input, cfg.AgentNameKeys); name != "" {
		return name, nil
	}
	for _, arn := range [...]string{sc.StateMachineArn, sc.ExecutionArn} {
		if name := StateMachineName(arn); name != "" {
			return name, nil
		}
	}
	if sc.StateMachineArn != "" {
		// Not an ARN we can read (an emulator's?): it still identifies the state machine.
		return sc.StateMachineArn, nil
	}
	return UnknownAgentName, nil
}

// errorMessage combines Step Functions' error code and cause as "error: cause".
func errorMessage(code, cause string) string {
	switch {
	case code != "" && cause != "":
		return code + ": " + cause
	case code != "":
		return code
	}
	return cause
}

// StateMachineName returns the state machine name in a Step Functions ARN:
// NAME in arn:PARTITION:states:REGION:ACCOUNT:stateMachine:NAME[:VERSION-OR-ALIAS],
// SMNAME in an execution ARN (…:execution:SMNAME:EXECNAME) or an express execution ARN
// (…:express:SMNAME:EXECNAME:RUNID). Child workflows of a Distributed Map keep their
// "SMNAME/LABEL" form. It returns "" for anything else.
func StateMachineName(arn string) string {
	parts := strings.SplitN(arn, ":", 8)
	if len(parts) < 7 || parts[0] != "arn" || parts[2] != "states" {
		return ""
	}
	switch parts[5] {
	case "stateMachine", "execution", "express":
		return parts[6]
	}
	return ""
}

// ExecutionArnParts splits a Step Functions execution ARN,
// arn:PARTITION:states:REGION:ACCOUNT:execution:STATE_MACHINE:NAME, into its state
// machine's ARN, the state machine's name and the execution's name. ok is false for
// anything else.
func ExecutionArnParts(arn string) (smArn, smName, name string, ok bool) {
	const infix = ":execution:"
	i := strings.Index(arn, infix)
	if i < 0 || strings.Count(arn[:i], ":") != 4 || !strings.HasPrefix(arn, "arn:") {
		return "", "", "", false
	}
	smName, name, ok = strings.Cut(arn[i+len(infix):], ":")
	if !ok || smName == "" || name == "" || strings.Contains(name, ":") {
		return "", "", "", false
	}
	return arn[:i] + ":stateMachine:" + smName, smName, name, true
}
