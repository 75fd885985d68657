package main

// Fault tests of the AWS worker: the real binary (`agentwatch run --backend aws`) runs
// as subprocesses against Amazon DynamoDB Local (the journal with its stream, the read
// models, leases) and moto's server (the status-change queue and its dead-letter
// queue). What no local server produces — throttling, 5xx answers, slow answers,
// requests lost on the way, and requests applied whose answers are lost — comes from
// adapters/faultinject's proxy, which the workers reach DynamoDB, DynamoDB Streams and
// SQS through (AWS_ENDPOINT_URL_*), at the protocol level: the tests whose names say
// FaultProxy use it. Agents write the journal and EventBridge sends status changes
// directly, as they do in AWS: only the worker sees the faults.
//
// Each test ends by comparing the read models with a clean fold of the journal
// (storetest.FoldJournal: what a rebuild writes), so "0 lost, 0 double-counted" is
// checked on every execution-index item, every session and every statistics bucket.

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/faultinject"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/adapters/storetest"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

// awsWorld is DynamoDB Local and moto with fresh tables and queues, fault proxies in
// front of both for the workers, and direct clients for the agents and the checks.
type awsWorld struct {
	t        *testing.T
	bin      string
	ddb      *dynamodb.Client
	sqs      *awssqs.Client
	cfg      awdynamodb.Config
	queue    mototest.Queue
	ddbProxy *faultinject.Proxy
	sqsProxy *faultinject.Proxy
	motoEP   string
	// run makes this test's session ids unique.
	run string
}

func newAWSWorld(t *testing.T) *awsWorld {
	t.Helper()
	ddbEP, motoEP := dynamotest.Endpoint(t), mototest.Endpoint(t)
	w := &awsWorld{t: t, bin: agentwatchBinary(t), ddb: dynamotest.NewClient(t), motoEP: motoEP}
	w.cfg = dynamotest.Migrated(t, w.ddb)
	w.sqs = awssqs.NewFromConfig(mototest.AWSConfig(t))
	// maxReceiveCount 10: a status change that fails this often under faults would be
	// dead-lettered, and the test counts the dead-letter queue as lost.
	w.queue = mototest.CreateQueueWithDLQ(t, w.sqs, mototest.Name(t, "status"), 10, 60*time.Second)
	var b [4]byte
	_, _ = rand.Read(b[:])
	w.run = hex.EncodeToString(b[:])
	var err error
	w.ddbProxy, err = faultinject.New(faultinject.Config{Upstream: ddbEP, Seed: 16})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.ddbProxy.Close() })
	w.sqsProxy, err = faultinject.New(faultinject.Config{Upstream: motoEP, Seed: 61})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.sqsProxy.Close() })
	return w
}

// workerEnv is the workers' environment: the SDK's standard variables, with DynamoDB,
// its stream and SQS behind the proxies.
func (w *awsWorld) workerEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTWATCH_") && !strings.HasPrefix(kv, "AWS_") {
			env = append(env, kv)
		}
	}
	return append(env, "AWS_REGION="+dynamotest.Region, "AWS_ACCESS_KEY_ID="+dynamotest.AccessKey, "AWS_SECRET_ACCESS_KEY="+dynamotest.AccessKey,
		"AWS_ENDPOINT_URL_DYNAMODB="+w.ddbProxy.URL(), "AWS_ENDPOINT_URL_DYNAMODB_STREAMS="+w.ddbProxy.URL(),
		"AWS_ENDPOINT_URL_SQS="+w.sqsProxy.URL(), "AWS_ENDPOINT_URL_SNS="+w.motoEP, "AWS_ENDPOINT_URL_SFN="+w.motoEP)
}

// faultDeadline is every stage's deadline in these tests: short, so that a detector
// that judged deadlines on the clock alone would raise false alerts whenever the
// projection falls a few seconds behind.
const faultDeadline = "5s"

// startWorker runs `agentwatch run --backend aws` and returns once it serves HTTP.
func (w *awsWorld) startWorker() (*workerProcess, string) {
	w.t.Helper()
	args := []string{"run", "--backend", "aws", "--table-prefix", w.cfg.TablePrefix, "--http", "127.0.0.1:0", "--log-format", "json",
		"--sfn-queue-url", w.queue.URL, "--detector-interval", "1s", "--shutdown-timeout", "20s", "--completion-grace", faultDeadline}
	for _, st := range domain.Stages {
		args = append(args, "--timeout-"+string(st), faultDeadline)
	}
	return spawnWorker(w.t, w.bin, w.workerEnv(), args...)
}

// spawnWorker runs bin with args and env (a `run` that logs JSON and listens on port
// 0) and returns once it logged its address. It is killed when the test ends if it
// still runs.
func spawnWorker(t *testing.T, bin string, env []string, args ...string) (*workerProcess, string) {
	t.Helper()
	p := &workerProcess{cmd: exec.Command(bin, args...), addr: make(chan string, 1), done: make(chan struct{})}
	p.cmd.Env = env
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			var entry struct {
				Msg  string `json:"msg"`
				HTTP string `json:"http"`
			}
			if json.Unmarshal(sc.Bytes(), &entry) == nil && entry.Msg == "agentwatch running" {
				p.addr <- entry.HTTP
			}
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	go func() {
		p.err = p.cmd.Wait()
		_ = pw.Close()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	select {
	case base := <-p.addr:
		return p, base
	case <-p.done:
		t.Fatalf("agentwatch exited before it ran (%v):\n%s", p.err, p.output())
	case <-time.After(time.Minute):
		t.Fatalf("agentwatch did not start within a minute:\n%s", p.output())
	}
	return nil, ""
}

// stopWorker sends SIGTERM and waits for a clean exit.
func stopWorker(t *testing.T, p *workerProcess) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.done:
		assert.NoError(t, p.err, "exit status after SIGTERM:\n%s", tail(p.output(), 40))
	case <-time.After(40 * time.Second):
		t.Errorf("worker did not stop within 40s of SIGTERM:\n%s", tail(p.output(), 40))
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// scrape sums a metric of a worker's /metrics over the series whose labels include
// labels ("name=value").
func scrape(t *testing.T, base, name string, labels ...string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		match := true
		for _, l := range labels {
			k, v, _ := strings.Cut(l, "=")
			match = match && strings.Contains(line, k+`="`+v+`"`)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		require.NoError(t, err, line)
		sum += v
	}
	require.NoError(t, sc.Err())
	return sum
}

// agentStatuses are a session's journal items as its agent writes them (seed 002's
// happy path).
var agentStatuses = []string{"SESSION_INITIATED", "AGENT_RUNTIME_INVOCATION_STARTED", "AGENT_RUNTIME_INVOCATION_SUCCEEDED",
	"AGENT_ENTRYPOINT_STARTED", "AGENT_BACKGROUND_TASK_STARTED", "AGENT_BACKGROUND_TASK_COMPLETED"}

// itemsPerSession is what the journal holds of one session of the traffic: its agent's
// items and its execution's RUNNING and SUCCEEDED.
var itemsPerSession = len(agentStatuses) + 2

// statusEnvelope is an EventBridge "Step Functions Execution Status Change" of
// session sid's execution, as the rule sends it to the queue.
func statusEnvelope(sid, agent, status string, start, stop time.Time) string {
	arn := "arn:aws:states:us-east-1:123456789012:execution:" + agent + ":" + sid
	var stopMs any
	if !stop.IsZero() {
		stopMs = stop.UnixMilli()
	}
	env := map[string]any{
		"version": "0", "id": sid + "-" + status, "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
		"account": "123456789012", "time": time.Now().UTC().Format(time.RFC3339), "region": "us-east-1", "resources": []string{arn},
		"detail": map[string]any{"executionArn": arn, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:" + agent,
			"name": sid, "status": status, "startDate": start.UnixMilli(), "stopDate": stopMs, "redriveCount": 0,
			"input": `{"session_id":"` + sid + `","agentName":"` + agent + `"}`, "inputDetails": map[string]any{"included": true}},
	}
	b, _ := json.Marshal(env)
	return string(b)
}

// putItem writes a journal item with a plain PutItem, as agents do.
func (w *awsWorld) putItem(attrs map[string]string) error {
	item := make(map[string]dtypes.AttributeValue, len(attrs))
	for k, v := range attrs {
		item[k] = &dtypes.AttributeValueMemberS{Value: v}
	}
	_, err := w.ddb.PutItem(w.t.Context(), &dynamodb.PutItemInput{TableName: aws.String(w.cfg.JournalTable), Item: item})
	return err
}

// sendStatus sends a status change to the queue, as the EventBridge rule does.
func (w *awsWorld) sendStatus(body string) error {
	_, err := w.sqs.SendMessage(w.t.Context(), &awssqs.SendMessageInput{QueueUrl: aws.String(w.queue.URL), MessageBody: aws.String(body)})
	return err
}

// session runs one session of the traffic, completing within milliseconds: its
// execution's RUNNING, its agent's six items, its execution's SUCCEEDED.
func (w *awsWorld) session(i int) (string, error) {
	sid := fmt.Sprintf("%s-%05d", w.run, i)
	agent := fmt.Sprintf("fault-agent-%d", i%3)
	start := time.Now().UTC()
	if err := w.sendStatus(statusEnvelope(sid, agent, "RUNNING", start, time.Time{})); err != nil {
		return sid, err
	}
	for k, st := range agentStatuses {
		ts := start.Add(time.Duration(k) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		if err := w.putItem(map[string]string{"PK": "SESSION#" + sid, "SK": "EVENT#" + ts, "Status": st, "Timestamp": ts}); err != nil {
			return sid, err
		}
	}
	return sid, w.sendStatus(statusEnvelope(sid, agent, "SUCCEEDED", start, start.Add(10*time.Millisecond)))
}

// traffic runs sessions at perSecond until stop is closed, and returns their ids.
func (w *awsWorld) traffic(stop <-chan struct{}, perSecond int) <-chan []string {
	done := make(chan []string, 1)
	go func() {
		var ids []string
		pace := time.NewTicker(time.Second / time.Duration(perSecond))
		defer pace.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- ids
				return
			case <-pace.C:
			}
			sid, err := w.session(i)
			if err != nil {
				w.t.Errorf("session %s: %v", sid, err)
			}
			ids = append(ids, sid)
		}
	}()
	return done
}

// state is what the checks read: the journal folded, the read models, the queues.
type state struct {
	model   *projections.Model
	perSess map[string]int
	diff    string
}

// check folds the journal and compares the read models with the fold: "" when they
// are equal and every session of ids has all its journal items, else what differs.
func (w *awsWorld) check(ids []string) state {
	ctx := w.t.Context()
	journal, err := awdynamodb.NewJournalStore(w.ddb, w.cfg, nil)
	require.NoError(w.t, err)
	st := state{perSess: map[string]int{}}
	st.model = storetest.FoldJournal(w.t, journal)
	require.NoError(w.t, journal.Scan(ctx, app.ScanOptions{}, func(b []domain.Event) error {
		for i := range b {
			st.perSess[b[i].SessionID]++
		}
		return nil
	}))
	for _, id := range ids {
		if n := st.perSess[id]; n != itemsPerSession {
			st.diff = fmt.Sprintf("session %s has %d of its %d journal items", id, n, itemsPerSession)
			return st
		}
	}
	rm, err := awdynamodb.NewReadModelStore(w.ddb, w.cfg, storetest.Registry(w.t), 0, nil)
	require.NoError(w.t, err)
	st.diff = compareReadModels(w.t, rm, st.model)
	if st.diff != "" {
		return st
	}
	if v, f := mototest.QueueCounts(w.t, w.sqs, w.queue.URL); v+f > 0 {
		st.diff = fmt.Sprintf("the queue still holds %d visible and %d in-flight status changes", v, f)
	}
	return st
}

// compareReadModels returns the first difference between the stored read models and
// the fold ("" when none): every session, and every row of every registered read model
// but the detector's (the detector closes its entries as it judges them).
func compareReadModels(t *testing.T, rm *awdynamodb.ReadModelStore, want *projections.Model) string {
	ctx := t.Context()
	var ids []string
	for _, s := range want.Sessions() {
		ids = append(ids, s.ID)
	}
	for len(ids) > 0 {
		n := min(len(ids), 100)
		loaded, err := rm.LoadSessions(ctx, ids[:n])
		require.NoError(t, err)
		for _, id := range ids[:n] {
			got, ok := loaded[id]
			if !ok {
				return "session " + id + " not projected"
			}
			if !want.Session(id).Equal(&got.Session) {
				return "session " + id + " differs from the journal's fold"
			}
		}
		ids = ids[n:]
	}
	reg := storetest.Registry(t)
	got := storetest.Snapshot(t, reg, rm)
	exp := storetest.StateSnapshot(reg, want.Derive(reg, projections.Env{NowMs: time.Now().UnixMilli()}))
	var keys []string
	for k := range exp {
		keys = append(keys, k)
	}
	for k := range got {
		if _, ok := exp[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if strings.HasPrefix(k, stuck.Table+"/") {
			continue
		}
		if got[k] != exp[k] {
			return fmt.Sprintf("read model row %s:\nwant %s\ngot  %s", k, exp[k], got[k])
		}
	}
	return ""
}

// waitConverged polls check until it finds nothing amiss, and returns how long that
// took.
func (w *awsWorld) waitConverged(ids []string, limit time.Duration) (time.Duration, state) {
	w.t.Helper()
	start := time.Now()
	for {
		st := w.check(ids)
		if st.diff == "" {
			return time.Since(start), st
		}
		if time.Since(start) > limit {
			w.t.Fatalf("not converged %s after the faults stopped: %s", limit, st.diff)
		}
		time.Sleep(time.Second) // poll interval
	}
}

// alerts lists every alert the detector raised.
func (w *awsWorld) alerts() []app.Alert {
	store, err := awdynamodb.NewAlertStore(w.ddb, w.cfg, nil)
	require.NoError(w.t, err)
	page, err := store.ListAlerts(w.t.Context(), app.AlertFilter{State: app.AlertFilterAll})
	require.NoError(w.t, err)
	return page.Items
}

// alerted reports whether the detector raised an alert for session id.
func (w *awsWorld) alerted(id string) bool {
	for _, a := range w.alerts() {
		if a.SessionID == id {
			return true
		}
	}
	return false
}

// deadLettered returns how many status changes the dead-letter queue holds.
func (w *awsWorld) deadLettered() int {
	v, f := mototest.QueueCounts(w.t, w.sqs, w.queue.DLQURL)
	return v + f
}

// faultRules inject faults into share of every request through a proxy, split among
// the kinds: throttling, 5xx answers, slow answers, requests lost, and responses lost
// after the request was applied. Rules are drawn in order, so each one's rate is its
// share of what the rules before it let through.
func faultRules(share float64) []faultinject.Rule {
	parts := []struct {
		kind  faultinject.Kind
		share float64
	}{
		{faultinject.Throttle, 0.30}, {faultinject.ServerError, 0.20}, {faultinject.Delay, 0.20},
		{faultinject.DropRequest, 0.15}, {faultinject.DropResponse, 0.15},
	}
	var rules []faultinject.Rule
	left := 1.0
	for _, p := range parts {
		abs := share * p.share
		r := faultinject.Rule{Kind: p.kind, Rate: math.Min(1, abs/left)}
		if p.kind == faultinject.Delay {
			r.Delay = 800 * time.Millisecond
		}
		if p.kind == faultinject.ServerError {
			r.Status = 500
		}
		rules = append(rules, r)
		left -= abs
	}
	return rules
}

// TestFaultProxy_AWSWorkersUnder20PercentFaults runs two workers while sessions flow
// (5 a second, each 6 agent items and 2 status changes), with 20% of every request the
// workers make to DynamoDB, DynamoDB Streams and SQS throttled, failed, delayed, lost,
// or applied with its answer lost, for 60 s. After the faults stop, the read models
// must equal a clean fold of the journal within 60 s, with every session's items in
// the journal (0 lost), the statistics equal to the fold's (0 double-counted), no
// lease lost or taken over, no status change dead-lettered, and no false alert (every
// session completed within milliseconds; the deadlines are 5 s, so a detector that
// judged them against the clock while the projection lags would raise false ones),
// while one session that really is stuck (initiated, then silent) does alert.
func TestFaultProxy_AWSWorkersUnder20PercentFaults(t *testing.T) {
	w := newAWSWorld(t)
	workerA, baseA := w.startWorker()
	workerB, baseB := w.startWorker()
	stop := make(chan struct{})
	sessions := w.traffic(stop, 5)
	// One session really is stuck: its agent initiates it, invokes the runtime and is
	// heard of no more. It must alert, faults or not.
	stuckID := w.run + "-stuck"
	begun := time.Now().UTC()
	require.NoError(t, w.sendStatus(statusEnvelope(stuckID, "fault-agent-0", "RUNNING", begun, time.Time{})))
	for k, status := range agentStatuses[:2] {
		ts := begun.Add(time.Duration(k) * time.Millisecond).Format("2006-01-02T15:04:05.000Z")
		require.NoError(t, w.putItem(map[string]string{"PK": "SESSION#" + stuckID, "SK": "EVENT#" + ts, "Status": status, "Timestamp": ts}))
	}
	time.Sleep(5 * time.Second) // traffic before the faults: the shard is leased and read
	requestsBefore := w.requests()
	for _, p := range []*faultinject.Proxy{w.ddbProxy, w.sqsProxy} {
		require.NoError(t, p.SetRules(faultRules(0.20)))
	}
	const faultFor = 60 * time.Second
	time.Sleep(faultFor) // the faults last this long while traffic flows
	for _, p := range []*faultinject.Proxy{w.ddbProxy, w.sqsProxy} {
		require.NoError(t, p.SetRules(nil))
	}
	requests := w.requests() - requestsBefore
	close(stop)
	ids := <-sessions
	took, st := w.waitConverged(ids, 60*time.Second)

	ddbStats, sqsStats := w.ddbProxy.Stats(), w.sqsProxy.Stats()
	faults := ddbStats.Total() + sqsStats.Total()
	lost, expired, confirmed := 0.0, 0.0, 0.0
	for _, base := range []string{baseA, baseB} {
		lost += scrape(t, base, "agentwatch_dynamodbstreams_lease_events_total", "event=lost")
		expired += scrape(t, base, "agentwatch_dynamodbstreams_lease_events_total", "event=taken_expired")
		confirmed += scrape(t, base, "agentwatch_dynamodbstreams_lease_writes_confirmed_total")
	}
	for deadline := time.Now().Add(time.Minute); !w.alerted(stuckID); {
		require.True(t, time.Now().Before(deadline), "the stuck session raised no alert within a minute")
		time.Sleep(time.Second) // poll interval
	}
	var alerts []app.Alert
	for _, a := range w.alerts() {
		if a.SessionID != stuckID {
			alerts = append(alerts, a)
		}
	}
	t.Logf("%d sessions (%d journal items); %d of the %d worker requests of the %s window faulted (%.1f%%: %v DynamoDB and Streams, %v SQS); converged %s after the faults stopped; "+
		"lost 0, double-counted 0; lease losses %v, leases taken as expired %v, lease writes confirmed on a re-read %v; false alerts %d (the stuck session alerted); dead-lettered %d",
		len(ids), len(ids)*itemsPerSession, faults, requests, faultFor, 100*float64(faults)/float64(requests), kindTotals(ddbStats), kindTotals(sqsStats),
		took.Round(100*time.Millisecond),
		lost, expired, confirmed, len(alerts), w.deadLettered())
	assert.Positive(t, faults)
	assert.Len(t, st.model.Sessions(), len(ids)+1, "every session projected, and the stuck one")
	assert.Zero(t, lost, "false lease losses")
	assert.Zero(t, expired, "leases taken over as expired")
	assert.Zero(t, w.deadLettered(), "status changes dead-lettered")
	for _, a := range alerts {
		t.Errorf("false alert: %s %s (raised %s)", a.Kind, a.SessionID, a.RaisedAt)
	}
	stopWorker(t, workerA)
	stopWorker(t, workerB)
}

// requests counts the requests both proxies received so far.
func (w *awsWorld) requests() int64 {
	var n int64
	for _, p := range []*faultinject.Proxy{w.ddbProxy, w.sqsProxy} {
		for _, c := range p.Stats().Requests {
			n += c
		}
	}
	return n
}

// kindTotals sums a proxy's injected faults per kind.
func kindTotals(s faultinject.Stats) map[faultinject.Kind]int64 {
	out := map[faultinject.Kind]int64{}
	for k, n := range s.Injected {
		out[k.Kind] += n
	}
	return out
}

// TestAWSWorkersSurviveSIGKILLs kills a worker with SIGKILL 24 times at random points
// while sessions flow (two workers run; the killed one is started again at once), then
// lets the last two run until the read models equal a clean fold of the journal (what
// a rebuild writes): nothing lost, nothing counted twice.
func TestAWSWorkersSurviveSIGKILLs(t *testing.T) {
	w := newAWSWorld(t)
	seed := uint64(time.Now().UnixNano())
	r := mrand.New(mrand.NewPCG(seed, 42))
	t.Logf("kill schedule seed %d", seed)
	workers := make([]*workerProcess, 2)
	bases := make([]string, 2)
	for i := range workers {
		workers[i], bases[i] = w.startWorker()
	}
	stop := make(chan struct{})
	sessions := w.traffic(stop, 5)
	const kills = 24
	for k := range kills {
		time.Sleep(time.Duration(500+r.IntN(3500)) * time.Millisecond) // a random point in the traffic
		i := r.IntN(len(workers))
		require.NoError(t, workers[i].cmd.Process.Signal(syscall.SIGKILL), "kill %d", k)
		<-workers[i].done
		workers[i], bases[i] = w.startWorker()
	}
	close(stop)
	ids := <-sessions
	took, st := w.waitConverged(ids, 2*time.Minute)
	t.Logf("%d SIGKILLs during %d sessions (%d journal items); converged %s after the traffic stopped; lost 0, double-counted 0; dead-lettered %d",
		kills, len(ids), len(ids)*itemsPerSession, took.Round(100*time.Millisecond), w.deadLettered())
	assert.Len(t, st.model.Sessions(), len(ids))
	assert.Zero(t, w.deadLettered())
	for i := range workers {
		stopWorker(t, workers[i])
	}
}

// poisonItem is the i-th malformed journal item: each breaks the journal format a
// different way, with the key of a session so that the rest of that session is valid.
func poisonItem(sid string, i int, at time.Time) (map[string]dtypes.AttributeValue, string) {
	ts := at.Format("2006-01-02T15:04:05.000Z")
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	item := map[string]dtypes.AttributeValue{"PK": s("SESSION#" + sid), "SK": s(fmt.Sprintf("EVENT#%s#poison-%d", ts, i))}
	switch i % 5 {
	case 0: // no Status
		item["Timestamp"] = s(ts)
		return item, "Status"
	case 1: // a Timestamp that is no time
		item["Status"], item["Timestamp"] = s("AGENT_ENTRYPOINT_STARTED"), s("yesterday-ish")
		return item, "Timestamp"
	case 2: // a Timestamp of the wrong type
		item["Status"], item["Timestamp"] = s("AGENT_ENTRYPOINT_STARTED"), &dtypes.AttributeValueMemberN{Value: "1730716200"}
		return item, "Timestamp"
	case 3: // a Status of the wrong type
		item["Status"], item["Timestamp"] = &dtypes.AttributeValueMemberN{Value: "7"}, s(ts)
		return item, "Status"
	default: // an SK that is not an event
		item["SK"] = s(fmt.Sprintf("NOTE#%d", i))
		item["Status"], item["Timestamp"] = s("AGENT_ENTRYPOINT_STARTED"), s(ts)
		return item, "SK"
	}
}

// TestAWSWorkerPoisonOnePercentOf10000 writes 10,000 journal items as agents would, 1%
// of them malformed (no Status, a Timestamp that is no time or of the wrong type, a
// Status of the wrong type, an SK that is no event), interleaved with the valid ones,
// while a worker projects the stream. Every valid item must be projected (the read
// models equal the fold of the journal's valid items), every malformed one quarantined
// with a reason that names the field, and nothing blocked behind them.
func TestAWSWorkerPoisonOnePercentOf10000(t *testing.T) {
	w := newAWSWorld(t)
	worker, _ := w.startWorker()
	const total, every = 10000, 100
	start := time.Now().UTC().Add(-time.Hour)
	poisonField := map[string]string{} // "PK/SK" -> field named in the reason
	var ids []string
	var batch []dtypes.WriteRequest
	flush := func() {
		for len(batch) > 0 {
			out, err := w.ddb.BatchWriteItem(t.Context(), &dynamodb.BatchWriteItemInput{RequestItems: map[string][]dtypes.WriteRequest{w.cfg.JournalTable: batch}})
			require.NoError(t, err)
			batch = out.UnprocessedItems[w.cfg.JournalTable]
		}
	}
	s := func(v string) dtypes.AttributeValue { return &dtypes.AttributeValueMemberS{Value: v} }
	for i := 0; i < total; i++ {
		sid := fmt.Sprintf("%s-%04d", w.run, i/len(agentStatuses))
		at := start.Add(time.Duration(i) * time.Millisecond)
		var item map[string]dtypes.AttributeValue
		if i%every == every/2 {
			var field string
			item, field = poisonItem(sid, i, at)
			poisonField[item["PK"].(*dtypes.AttributeValueMemberS).Value+"/"+item["SK"].(*dtypes.AttributeValueMemberS).Value] = field
		} else {
			ts := at.Format("2006-01-02T15:04:05.000Z")
			item = map[string]dtypes.AttributeValue{"PK": s("SESSION#" + sid), "SK": s("EVENT#" + ts),
				"Status": s(agentStatuses[i%len(agentStatuses)]), "Timestamp": s(ts)}
			if len(ids) == 0 || ids[len(ids)-1] != sid {
				ids = append(ids, sid)
			}
		}
		batch = append(batch, dtypes.WriteRequest{PutRequest: &dtypes.PutRequest{Item: item}})
		if len(batch) == 25 {
			flush()
		}
	}
	flush()
	written := time.Now()

	quarantine, err := awdynamodb.NewQuarantineStore(w.ddb, w.cfg)
	require.NoError(t, err)
	journal, err := awdynamodb.NewJournalStore(w.ddb, w.cfg, nil)
	require.NoError(t, err)
	model := storetest.FoldJournal(t, journal)
	rm, err := awdynamodb.NewReadModelStore(w.ddb, w.cfg, storetest.Registry(w.t), 0, nil)
	require.NoError(t, err)
	var diff string
	for deadline := time.Now().Add(3 * time.Minute); ; {
		n, err := quarantine.CountQuarantined(t.Context())
		require.NoError(t, err)
		diff = compareReadModels(t, rm, model)
		if diff == "" && n >= int64(len(poisonField)) {
			break
		}
		require.True(t, time.Now().Before(deadline), "not done 3 minutes after the writes: %d of %d quarantined; %s\n%s",
			n, len(poisonField), diff, tail(worker.output(), 20))
		time.Sleep(time.Second) // poll interval
	}
	took := time.Since(written)
	q, err := quarantine.ListQuarantined(t.Context(), 0)
	require.NoError(t, err)
	require.Len(t, q, len(poisonField), "each malformed item quarantined once")
	for _, it := range q {
		var img map[string]map[string]any
		require.NoError(t, json.Unmarshal([]byte(it.Payload), &img), "the image in DynamoDB JSON: %s", it.Payload)
		key := fmt.Sprint(img["PK"]["S"]) + "/" + fmt.Sprint(img["SK"]["S"])
		field, ok := poisonField[key]
		require.True(t, ok, "quarantined %s, which was not malformed", key)
		assert.Contains(t, it.Reason, field, "the reason names the field: %s", it.Reason)
		delete(poisonField, key)
	}
	assert.Empty(t, poisonField, "malformed items not quarantined")
	assert.Len(t, model.Sessions(), len(ids), "every session with a valid item projected")
	t.Logf("%d journal items, %d malformed: %d valid projected into %d sessions, %d quarantined with their reason; done %s after the last write",
		total, total/every, model.Events, len(ids), len(q), took.Round(100*time.Millisecond))
	stopWorker(t, worker)
}
