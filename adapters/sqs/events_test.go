package sqs_test

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// statusChange is one "Step Functions Execution Status Change" event, shaped as Step
// Functions emits it (detail fields of the EventBridge documentation's examples).
type statusChange struct {
	StateMachineArn string
	Name            string // execution name
	Status          string
	StartMs         int64
	StopMs          int64 // 0: null (running)
	RedriveCount    int
	RedriveMs       int64 // 0: absent
	Error, Cause    string
	Input           string // execution input, JSON text
}

// executionArn is arn:aws:states:REGION:ACCOUNT:execution:SMNAME:NAME (a version or
// alias qualifier of the state machine ARN is not part of it).
func (s statusChange) executionArn() string {
	p := strings.Split(s.StateMachineArn, ":")
	return strings.Join(p[:5], ":") + ":execution:" + p[6] + ":" + s.Name
}

// detail is the event's detail object.
func (s statusChange) detail() map[string]any {
	input := s.Input
	if input == "" {
		input = "{}"
	}
	d := map[string]any{
		"executionArn":    s.executionArn(),
		"stateMachineArn": s.StateMachineArn,
		"name":            s.Name,
		"status":          s.Status,
		"startDate":       s.StartMs,
		"stopDate":        nil,
		"input":           input,
		"output":          nil,
		"inputDetails":    map[string]any{"included": true},
		"outputDetails":   nil,
		"redriveCount":    s.RedriveCount,
		"redriveStatus":   "NOT_REDRIVABLE",
	}
	if s.StopMs != 0 {
		d["stopDate"] = s.StopMs
	}
	switch s.Status {
	case "SUCCEEDED":
		d["output"] = `{"ok":true}`
		d["outputDetails"] = map[string]any{"included": true}
	case "FAILED", "TIMED_OUT", "ABORTED":
		d["redriveStatus"] = "REDRIVABLE"
		if s.Error != "" {
			d["error"], d["cause"] = s.Error, s.Cause
		}
	}
	if s.RedriveMs != 0 {
		d["redriveDate"] = s.RedriveMs
	}
	return d
}

// detailJSON is the detail as PutEvents takes it.
func (s statusChange) detailJSON() string { return mustJSON(s.detail()) }

// envelope is the EventBridge envelope a rule delivers to a queue.
func (s statusChange) envelope(id string) string {
	return mustJSON(map[string]any{
		"version":     "0",
		"id":          id,
		"detail-type": domain.StatusChangeDetailType,
		"source":      domain.StatusChangeSource,
		"account":     "123456789012",
		"time":        time.UnixMilli(s.StartMs).UTC().Format(time.RFC3339),
		"region":      "us-east-1",
		"resources":   []string{s.executionArn()},
		"detail":      s.detail(),
	})
}

// snsNotification wraps an envelope as SNS delivers it to an SQS subscriber without raw
// message delivery.
func snsNotification(topicArn, message string) string {
	return mustJSON(map[string]any{
		"Type":             "Notification",
		"MessageId":        "2f8f8a3e-0000-4000-8000-000000000000",
		"TopicArn":         topicArn,
		"Message":          message,
		"Timestamp":        "2026-01-01T00:00:00.000Z",
		"SignatureVersion": "1",
		"Signature":        "EXAMPLE",
		"SigningCertURL":   "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem",
		"UnsubscribeURL":   "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
	})
}

// statusChangeBody is a raw envelope of a status change of state machine smArn.
func statusChangeBody(smArn, name, status string, startMs, stopMs int64, redriveCount int) string {
	return statusChange{StateMachineArn: smArn, Name: name, Status: status, StartMs: startMs, StopMs: stopMs, RedriveCount: redriveCount}.envelope("id-" + name)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
