// Package sfntest is an HTTP-level fake of the Step Functions API for tests: an
// httptest.Server speaking the awsJson1_0 protocol (POST /, X-Amz-Target
// AWSStepFunctions.<Operation>, JSON bodies, dates as epoch-seconds floats, errors as
// {"__type": ..., "message": ...} with status 400) for ListExecutions (statusFilter,
// maxResults, nextToken), DescribeExecution and ListTagsForResource.
//
// It exists for what no local server produces: executions in any status, redriven ones,
// thousands of them, and throttling on demand. Everything else (creating state machines,
// starting executions) is moto's (adapters/sqs/mototest). Point a real SDK client at it
// with Client, or the SDK's standard configuration with AWS_ENDPOINT_URL_SFN=URL.
package sfntest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// Region and Account name every ARN the helpers make.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

// Operations the fake answers.
const (
	OpListExecutions      = "ListExecutions"
	OpDescribeExecution   = "DescribeExecution"
	OpListTagsForResource = "ListTagsForResource"
)

// Execution is one execution the fake knows, with what DescribeExecution answers.
type Execution struct {
	Arn             string
	StateMachineArn string
	Name            string
	Status          string
	StartDate       time.Time
	StopDate        time.Time
	RedriveDate     time.Time
	RedriveCount    int
	// Input and Output are JSON text ("" for none).
	Input, Output                      string
	Error, Cause                       string
	RedriveStatus, RedriveStatusReason string
}

// Error is an API error answer.
type Error struct {
	// Status is the HTTP status; default 400.
	Status int
	// Type is the error shape, e.g. ThrottlingException.
	Type    string
	Message string
}

// Throttled is the answer Step Functions gives past its quotas; the SDK retries it.
var Throttled = Error{Status: http.StatusBadRequest, Type: "ThrottlingException", Message: "Rate exceeded"}

// Hook runs before the fake answers a call: op is the operation, n the 1-based count
// of op's calls so far (this one included), body the request. A non-nil result is
// answered instead.
type Hook func(op string, n int, body map[string]any) *Error

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	*httptest.Server

	mu            sync.Mutex
	stateMachines map[string]map[string]string // ARN -> tags
	executions    map[string]*Execution
	calls         map[string]int
	described     []string
	hook          Hook
}

// New starts a fake, closed when the test ends.
func New(t testing.TB) *Server {
	s := &Server{stateMachines: map[string]map[string]string{}, executions: map[string]*Execution{}, calls: map[string]int{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Client returns an SDK client pointed at the fake: static credentials, no backoff
// between retries and no client-side retry quota, so that retried throttling costs no
// test time. optFns apply last.
func (s *Server) Client(optFns ...func(*sfn.Options)) *sfn.Client {
	return sfn.New(sfn.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
			o.RateLimiter = ratelimit.None
		}),
	}, optFns...)
}

// StateMachineArn returns the ARN of a state machine named name.
func StateMachineArn(name string) string {
	return "arn:aws:states:" + Region + ":" + Account + ":stateMachine:" + name
}

// ExecutionArn returns the ARN of execution name of state machine smName.
func ExecutionArn(smName, name string) string {
	return "arn:aws:states:" + Region + ":" + Account + ":execution:" + smName + ":" + name
}

// AddStateMachine makes a state machine known, with its tags; ListExecutions of an
// unknown one answers StateMachineDoesNotExist.
func (s *Server) AddStateMachine(arn string, tags map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stateMachines[arn] = tags
}

// Put adds an execution or replaces the one with its ARN (its state machine becomes
// known).
func (s *Server) Put(e Execution) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.stateMachines[e.StateMachineArn]; !ok {
		s.stateMachines[e.StateMachineArn] = nil
	}
	s.executions[e.Arn] = &e
}

// Delete forgets an execution: DescribeExecution answers ExecutionDoesNotExist.
func (s *Server) Delete(arn string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.executions, arn)
}

// SetHook installs h (nil removes it).
func (s *Server) SetHook(h Hook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hook = h
}

// Calls returns how many calls of op reached the fake, failed ones included.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// Described returns the ARNs DescribeExecution answered successfully, in call order.
func (s *Server) Described() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.described...)
}

// ResetCalls zeroes the call counts and the described list.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = map[string]int{}
	s.described = nil
}

const targetPrefix = "AWSStepFunctions."

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	if r.Method != http.MethodPost || !ok {
		writeError(w, Error{Type: "UnknownOperationException", Message: "POST with X-Amz-Target " + targetPrefix + "<Operation> expected"})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/x-amz-json-1.0" {
		writeError(w, Error{Type: "ValidationException", Message: "Content-Type must be application/x-amz-json-1.0, is " + ct})
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, Error{Status: http.StatusInternalServerError, Type: "InternalFailure", Message: err.Error()})
		return
	}
	body := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			writeError(w, Error{Type: "SerializationException", Message: err.Error()})
			return
		}
	}
	s.mu.Lock()
	s.calls[op]++
	n, hook := s.calls[op], s.hook
	s.mu.Unlock()
	if hook != nil {
		if e := hook(op, n, body); e != nil {
			writeError(w, *e)
			return
		}
	}
	var out any
	var apiErr *Error
	switch op {
	case OpListExecutions:
		out, apiErr = s.listExecutions(body)
	case OpDescribeExecution:
		out, apiErr = s.describeExecution(body)
	case OpListTagsForResource:
		out, apiErr = s.listTags(body)
	default:
		apiErr = &Error{Type: "UnknownOperationException", Message: "the fake does not answer " + op}
	}
	if apiErr != nil {
		writeError(w, *apiErr)
		return
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-RequestId", strconv.Itoa(n))
	_ = json.NewEncoder(w).Encode(out)
}

func writeError(w http.ResponseWriter, e Error) {
	if e.Status == 0 {
		e.Status = http.StatusBadRequest
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	w.Header().Set("X-Amzn-ErrorType", e.Type)
	w.WriteHeader(e.Status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazonaws.swf.service.v2.model#" + e.Type, "message": e.Message})
}

func str(body map[string]any, key string) string {
	s, _ := body[key].(string)
	return s
}

// listExecutions answers newest first by start date (ties by ARN, descending); the
// token is the offset of the next page.
func (s *Server) listExecutions(body map[string]any) (any, *Error) {
	smArn := str(body, "stateMachineArn")
	if smArn == "" {
		return nil, &Error{Type: "ValidationException", Message: "stateMachineArn is required by the fake"}
	}
	limit := 100
	if v, ok := body["maxResults"].(float64); ok && v > 0 {
		limit = int(v)
	}
	if limit > 1000 {
		return nil, &Error{Type: "ValidationException", Message: "maxResults must be at most 1000"}
	}
	offset := 0
	if tok := str(body, "nextToken"); tok != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(tok, "offset-"))
		if err != nil || !strings.HasPrefix(tok, "offset-") {
			return nil, &Error{Type: "InvalidToken", Message: "invalid nextToken " + tok}
		}
		offset = n
	}
	filter := str(body, "statusFilter")
	s.mu.Lock()
	if _, ok := s.stateMachines[smArn]; !ok {
		s.mu.Unlock()
		return nil, &Error{Type: "StateMachineDoesNotExist", Message: "State Machine Does Not Exist: '" + smArn + "'"}
	}
	var all []Execution
	for _, e := range s.executions {
		if e.StateMachineArn == smArn && (filter == "" || e.Status == filter) {
			all = append(all, *e)
		}
	}
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		if !all[i].StartDate.Equal(all[j].StartDate) {
			return all[i].StartDate.After(all[j].StartDate)
		}
		return all[i].Arn > all[j].Arn
	})
	items := []map[string]any{}
	end := min(offset+limit, len(all))
	for _, e := range all[min(offset, len(all)):end] {
		it := map[string]any{
			"executionArn": e.Arn, "stateMachineArn": e.StateMachineArn, "name": e.Name, "status": e.Status,
			"startDate": epochSeconds(e.StartDate), "redriveCount": e.RedriveCount,
		}
		setDate(it, "stopDate", e.StopDate)
		setDate(it, "redriveDate", e.RedriveDate)
		items = append(items, it)
	}
	out := map[string]any{"executions": items}
	if end < len(all) {
		out["nextToken"] = "offset-" + strconv.Itoa(end)
	}
	return out, nil
}

func (s *Server) describeExecution(body map[string]any) (any, *Error) {
	arn := str(body, "executionArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.executions[arn]
	if !ok {
		return nil, &Error{Type: "ExecutionDoesNotExist", Message: "Execution Does Not Exist: '" + arn + "'"}
	}
	s.described = append(s.described, arn)
	out := map[string]any{
		"executionArn": e.Arn, "stateMachineArn": e.StateMachineArn, "name": e.Name, "status": e.Status,
		"startDate": epochSeconds(e.StartDate), "redriveCount": e.RedriveCount,
		"inputDetails": map[string]bool{"included": true},
	}
	if e.Input != "" {
		out["input"] = e.Input
	}
	if e.Output != "" {
		out["output"] = e.Output
		out["outputDetails"] = map[string]bool{"included": true}
	}
	setDate(out, "stopDate", e.StopDate)
	setDate(out, "redriveDate", e.RedriveDate)
	for k, v := range map[string]string{"error": e.Error, "cause": e.Cause, "redriveStatus": e.RedriveStatus,
		"redriveStatusReason": e.RedriveStatusReason} {
		if v != "" {
			out[k] = v
		}
	}
	return out, nil
}

func (s *Server) listTags(body map[string]any) (any, *Error) {
	arn := str(body, "resourceArn")
	s.mu.Lock()
	defer s.mu.Unlock()
	tags, ok := s.stateMachines[arn]
	if !ok {
		return nil, &Error{Type: "ResourceNotFound", Message: "Resource not found: '" + arn + "'"}
	}
	out := []map[string]string{}
	for k, v := range tags {
		out = append(out, map[string]string{"key": k, "value": v})
	}
	return map[string]any{"tags": out}, nil
}

func setDate(m map[string]any, key string, t time.Time) {
	if !t.IsZero() {
		m[key] = epochSeconds(t)
	}
}

// epochSeconds writes a date as the API does: epoch seconds with the milliseconds as a
// fraction, in the scientific notation of its JSON encoder (1.767225600123E9).
func epochSeconds(t time.Time) json.Number {
	ms := t.UnixMilli()
	s := strconv.FormatFloat(float64(ms)/1000, 'E', -1, 64) // 1.767225600123E+09
	mant, exp, _ := strings.Cut(s, "E")
	e, _ := strconv.Atoi(exp) // FormatFloat writes a valid exponent
	return json.Number(mant + "E" + strconv.Itoa(e))
}
