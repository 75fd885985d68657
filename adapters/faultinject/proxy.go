package faultinject

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a rule does to a request.
type Kind string

// Fault kinds.
const (
	// Throttle answers with the service's throttling error (HTTP 400).
	Throttle Kind = "throttle"
	// ServerError answers with the service's internal error (HTTP 500 or Rule.Status).
	ServerError Kind = "server_error"
	// Delay holds the request for Rule.Delay, then forwards it.
	Delay Kind = "delay"
	// DropRequest closes the connection without forwarding the request.
	DropRequest Kind = "drop_request"
	// DropResponse forwards the request and closes the connection instead of answering:
	// the request was applied, the client never hears of it.
	DropResponse Kind = "drop_response"
)

// Kinds lists every fault kind.
var Kinds = []Kind{Throttle, ServerError, Delay, DropRequest, DropResponse}

// Services, as read from the X-Amz-Target header.
const (
	ServiceDynamoDB = "dynamodb"
	ServiceStreams  = "dynamodbstreams"
	ServiceSQS      = "sqs"
)

// Rule injects one kind of fault into a share of the matching requests.
type Rule struct {
	// Service restricts the rule to one service (ServiceDynamoDB, ServiceStreams,
	// ServiceSQS); empty matches every request.
	Service string
	// Operations restricts the rule to these operations ("UpdateItem", "GetRecords",
	// "ReceiveMessage"...); empty matches every operation.
	Operations []string
	// Kind is the fault.
	Kind Kind
	// Rate is the probability, 0 to 1, that a matching request gets the fault.
	Rate float64
	// Limit, when positive, is the most requests the rule injects into (per SetRules).
	// With Rate 1 and Limit 1 the next matching request, and only it, gets the fault.
	Limit int
	// Delay is how long a Delay fault holds a request: at least half of it, at most all
	// of it (uniformly), so that delayed requests do not arrive in lockstep.
	Delay time.Duration
	// Status, for ServerError, is the HTTP status (500 to 599). Default 500.
	Status int
}

// Validate reports what is wrong with r, naming the field.
func (r Rule) Validate() error {
	var errs []error
	if !slices.Contains(Kinds, r.Kind) {
		errs = append(errs, fmt.Errorf("Kind %q: must be one of %v", r.Kind, Kinds))
	}
	switch r.Service {
	case "", ServiceDynamoDB, ServiceStreams, ServiceSQS:
	default:
		errs = append(errs, fmt.Errorf("Service %q: must be empty, %s, %s or %s", r.Service, ServiceDynamoDB, ServiceStreams, ServiceSQS))
	}
	if r.Rate < 0 || r.Rate > 1 {
		errs = append(errs, fmt.Errorf("Rate %v: must be between 0 and 1", r.Rate))
	}
	if r.Limit < 0 {
		errs = append(errs, fmt.Errorf("Limit %d: must not be negative", r.Limit))
	}
	if r.Kind == Delay && r.Delay <= 0 {
		errs = append(errs, fmt.Errorf("Delay %s: a delay rule needs a positive delay", r.Delay))
	}
	if r.Status != 0 && (r.Status < 500 || r.Status > 599) {
		errs = append(errs, fmt.Errorf("Status %d: must be a 5xx status", r.Status))
	}
	return errors.Join(errs...)
}

// Config configures a Proxy.
type Config struct {
	// Upstream is the endpoint URL requests are forwarded to (http://127.0.0.1:PORT).
	Upstream string
	// Rules are the initial rules (SetRules replaces them).
	Rules []Rule
	// Seed seeds the dice; the same seed and the same sequence of requests inject the
	// same faults.
	Seed uint64
	// Logger, when set, logs each injected fault at debug level.
	Logger *slog.Logger
}

// Key names a counter of Stats: an operation and a fault kind.
type Key struct {
	Operation string
	Kind      Kind
}

// Stats is what a proxy has done so far.
type Stats struct {
	// Requests counts the requests received, by operation.
	Requests map[string]int64
	// Injected counts the faults injected, by operation and kind.
	Injected map[Key]int64
}

// Total returns the faults of kind injected into any operation; with no kind, all of
// them.
func (s Stats) Total(kinds ...Kind) int64 {
	var n int64
	for k, v := range s.Injected {
		if len(kinds) == 0 || slices.Contains(kinds, k.Kind) {
			n += v
		}
	}
	return n
}

// ruleState is a rule with its spent budget.
type ruleState struct {
	Rule
	ops  map[string]bool
	used atomic.Int64
}

// Proxy is a fault-injecting reverse proxy in front of one endpoint. It is safe for
// concurrent use.
type Proxy struct {
	upstream *url.URL
	listener net.Listener
	server   *http.Server
	client   *http.Client
	logger   *slog.Logger

	rules atomic.Pointer[[]*ruleState]

	diceMu sync.Mutex
	dice   *rand.Rand

	statsMu  sync.Mutex
	requests map[string]int64
	injected map[Key]int64

	closeOnce sync.Once
	done      chan struct{}
}

// New starts a proxy to cfg.Upstream on a free loopback port.
func New(cfg Config) (*Proxy, error) {
	u, err := url.Parse(cfg.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fault proxy: Upstream %q: must be an http(s) URL", cfg.Upstream)
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fault proxy: listen: %w", err)
	}
	p := &Proxy{
		upstream: u, listener: ln, logger: logger.With("component", "faultinject", "upstream", cfg.Upstream),
		client: &http.Client{Transport: &http.Transport{
			Proxy: nil, MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second,
			DialContext: (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		}},
		dice:     rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)),
		requests: map[string]int64{}, injected: map[Key]int64{}, done: make(chan struct{}),
	}
	if err := p.SetRules(cfg.Rules); err != nil {
		_ = ln.Close()
		return nil, err
	}
	p.server = &http.Server{Handler: p, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(p.done)
		if err := p.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			p.logger.Error("fault proxy stopped", "error", err)
		}
	}()
	return p, nil
}

// URL is the proxy's endpoint, to use instead of the upstream's.
func (p *Proxy) URL() string { return "http://" + p.listener.Addr().String() }

// SetRules replaces the rules (and resets their budgets); nil or empty stops
// injecting. Requests already being handled keep the fault they drew.
func (p *Proxy) SetRules(rules []Rule) error {
	states := make([]*ruleState, 0, len(rules))
	var errs []error
	for i, r := range rules {
		if err := r.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("rule %d: %w", i, err))
			continue
		}
		st := &ruleState{Rule: r}
		if len(r.Operations) > 0 {
			st.ops = map[string]bool{}
			for _, op := range r.Operations {
				st.ops[op] = true
			}
		}
		states = append(states, st)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fault proxy: %w", err)
	}
	p.rules.Store(&states)
	return nil
}

// Stats returns a copy of the counters.
func (p *Proxy) Stats() Stats {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	s := Stats{Requests: make(map[string]int64, len(p.requests)), Injected: make(map[Key]int64, len(p.injected))}
	for k, v := range p.requests {
		s.Requests[k] = v
	}
	for k, v := range p.injected {
		s.Injected[k] = v
	}
	return s
}

// Close stops the proxy: it stops listening and closes every connection.
func (p *Proxy) Close() error {
	var err error
	p.closeOnce.Do(func() {
		err = p.server.Close()
		<-p.done
		p.client.CloseIdleConnections()
	})
	return err
}

// target reads the service and operation of an AWS JSON-protocol request.
func target(r *http.Request) (service, op string) {
	t := r.Header.Get("X-Amz-Target")
	prefix, op, ok := strings.Cut(t, ".")
	if !ok {
		return "", ""
	}
	switch {
	case strings.HasPrefix(prefix, "DynamoDBStreams_"):
		return ServiceStreams, op
	case strings.HasPrefix(prefix, "DynamoDB_"):
		return ServiceDynamoDB, op
	case prefix == "AmazonSQS":
		return ServiceSQS, op
	}
	return "", op
}

// draw picks the fault for a request, if any.
func (p *Proxy) draw(service, op string) *ruleState {
	rules := p.rules.Load()
	if rules == nil {
		return nil
	}
	for _, r := range *rules {
		if r.Service != "" && r.Service != service {
			continue
		}
		if r.ops != nil && !r.ops[op] {
			continue
		}
		p.diceMu.Lock()
		hit := p.dice.Float64() < r.Rate
		p.diceMu.Unlock()
		if !hit {
			continue
		}
		if r.Limit > 0 && r.used.Add(1) > int64(r.Limit) {
			continue
		}
		return r
	}
	return nil
}

func (p *Proxy) count(op string, kind Kind) {
	p.statsMu.Lock()
	defer p.statsMu.Unlock()
	if kind == "" {
		p.requests[op]++
		return
	}
	p.injected[Key{Operation: op, Kind: kind}]++
}

// ServeHTTP forwards r, or injects the fault its rule says.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	service, op := target(r)
	p.count(op, "")
	rule := p.draw(service, op)
	if rule != nil {
		p.count(op, rule.Kind)
		p.logger.Debug("injecting a fault", "service", service, "operation", op, "kind", rule.Kind)
	}
	var kind Kind
	if rule != nil {
		kind = rule.Kind
	}
	switch kind {
	case Throttle:
		writeError(w, service, http.StatusBadRequest, throttleCode(service), "Rate of requests exceeded (injected fault)")
		return
	case ServerError:
		status := rule.Status
		if status == 0 {
			status = http.StatusInternalServerError
		}
		writeError(w, service, status, serverErrorCode(service), "Internal server error (injected fault)")
		return
	case DropRequest:
		_, _ = io.Copy(io.Discard, r.Body)
		hangUp(w)
		return
	case Delay:
		p.diceMu.Lock()
		d := rule.Delay/2 + time.Duration(p.dice.Int64N(int64(rule.Delay/2)+1))
		p.diceMu.Unlock()
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	resp, body, err := p.forward(r)
	if err != nil {
		p.logger.Debug("forward failed", "operation", op, "error", err)
		hangUp(w)
		return
	}
	if kind == DropResponse {
		hangUp(w)
		return
	}
	for k, vs := range resp.Header {
		if strings.EqualFold(k, "Content-Length") || strings.EqualFold(k, "Connection") {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(resp.StatusCode)
	_, _ = w.Write(body)
}

// forward sends r to the upstream and reads the whole answer. The request is not tied
// to the client's connection: a DropResponse must reach the upstream even though its
// client will hang up.
func (p *Proxy) forward(r *http.Request) (*http.Response, []byte, error) {
	in, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read request: %w", err)
	}
	u := *p.upstream
	u.Path = singleJoin(p.upstream.Path, r.URL.Path)
	u.RawQuery = r.URL.RawQuery
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 2*time.Minute)
	defer cancel()
	out, err := http.NewRequestWithContext(ctx, r.Method, u.String(), bytes.NewReader(in))
	if err != nil {
		return nil, nil, err
	}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Connection") {
			continue
		}
		out.Header[k] = slices.Clone(vs)
	}
	out.Host = r.Host // signatures cover the Host header
	resp, err := p.client.Do(out)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, fmt.Errorf("read response: %w", err)
	}
	return resp, body, nil
}

func singleJoin(a, b string) string {
	switch {
	case a == "" || a == "/":
		return b
	case b == "" || b == "/":
		return a
	}
	return strings.TrimRight(a, "/") + "/" + strings.TrimLeft(b, "/")
}

// hangUp closes the client's connection without an answer.
func hangUp(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as a dead peer or a middlebox gives
	}
	_ = conn.Close()
}

// throttleCode is the error a service answers when it throttles.
func throttleCode(service string) string {
	switch service {
	case ServiceDynamoDB:
		return "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"
	case ServiceSQS:
		return "com.amazonaws.sqs#RequestThrottled"
	default:
		return "com.amazon.coral.availability#ThrottlingException"
	}
}

// serverErrorCode is the error a service answers when it fails inside.
func serverErrorCode(service string) string {
	switch service {
	case ServiceDynamoDB, ServiceStreams:
		return "com.amazonaws.dynamodb.v20120810#InternalServerError"
	case ServiceSQS:
		return "com.amazonaws.sqs#InternalError"
	default:
		return "InternalFailure"
	}
}

// writeError answers an AWS JSON-protocol error. DynamoDB's answers carry the CRC32
// of their body, which the SDK checks against AWS endpoints.
func writeError(w http.ResponseWriter, service string, status int, code, message string) {
	body, _ := json.Marshal(map[string]string{"__type": code, "message": message})
	short := code[strings.LastIndex(code, "#")+1:]
	h := w.Header()
	h.Set("Content-Type", "application/x-amz-json-1.0")
	h.Set("X-Amzn-ErrorType", short)
	h.Set("X-Amzn-RequestId", "faultinject-"+strconv.FormatUint(rand.Uint64(), 36))
	if service == ServiceSQS {
		fault := "Sender"
		if status >= 500 {
			fault = "Receiver"
		}
		h.Set("X-Amzn-Query-Error", short+";"+fault)
	}
	if service == ServiceDynamoDB || service == ServiceStreams {
		h.Set("X-Amz-Crc32", strconv.FormatUint(uint64(crc32.ChecksumIEEE(body)), 10))
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
