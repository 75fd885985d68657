package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// buildWithDeployScript builds the binary with deployments/build.sh, the image's own
// build command, into a temporary directory.
func buildWithDeployScript(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "agentwatch")
	start := time.Now()
	out, err := exec.Command(filepath.Join("..", "..", "deployments", "build.sh"), bin).CombinedOutput()
	require.NoError(t, err, "build.sh: %s", out)
	t.Logf("build.sh took %s", time.Since(start).Round(time.Millisecond))
	return bin
}

// workerProcess is `agentwatch run` as a subprocess, its JSON log kept.
type workerProcess struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  strings.Builder
	addr chan string
	done chan struct{}
	err  error
}

// startWorkerProcess runs bin with args (a `run` that logs JSON and listens on port 0)
// and returns once it logged its address. It is killed when the test ends if it still
// runs.
func startWorkerProcess(t *testing.T, bin string, args ...string) (*workerProcess, string) {
	t.Helper()
	p := &workerProcess{cmd: exec.Command(bin, args...), addr: make(chan string, 1), done: make(chan struct{})}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTWATCH_") {
			env = append(env, kv)
		}
	}
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

func (p *workerProcess) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

// statusChangeBatch is n status changes of executions that each have their own
// session: RUNNING for even executions, SUCCEEDED (with the RUNNING before it) for odd
// ones, as NDJSON, and the final status of each execution.
func statusChangeBatch(batch, n int) ([]byte, map[string]string) {
	var b bytes.Buffer
	final := map[string]string{}
	for i := range n {
		name := fmt.Sprintf("b%03d-e%03d", batch, i)
		arn := "arn:aws:states:us-east-1:123456789012:execution:shutdown-agent:" + name
		statuses := []string{"RUNNING"}
		if i%2 == 1 {
			statuses = append(statuses, "SUCCEEDED")
		}
		for _, st := range statuses {
			var stop any
			if st == "SUCCEEDED" {
				stop = 1730716260000 + int64(i)
			}
			envelope := map[string]any{
				"version": "0", "id": fmt.Sprintf("%s-%s", name, st), "detail-type": "Step Functions Execution Status Change",
				"source": "aws.states", "account": "123456789012", "time": "2024-11-04T10:30:00Z", "region": "us-east-1",
				"resources": []string{arn},
				"detail": map[string]any{"executionArn": arn, "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:shutdown-agent",
					"name": name, "status": st, "startDate": 1730716200000 + int64(i), "stopDate": stop, "redriveCount": 0,
					"input": `{"session_id":"` + name + `"}`, "inputDetails": map[string]any{"included": true}},
			}
			line, _ := json.Marshal(envelope)
			b.Write(line)
			b.WriteByte('\n')
		}
		final[arn] = statuses[len(statuses)-1]
	}
	return b.Bytes(), final
}

// TestGracefulShutdownOnSIGTERM runs the binary the image runs (built by
// deployments/build.sh) as the embedded worker, posts status changes to
// POST /v1/events while the worker projects them, and sends SIGTERM mid-stream, as ECS
// does to stop a task. The worker must stop taking requests, finish what is in flight,
// log "shutting down" and exit with status 0 within --shutdown-timeout. Restarted on
// the same data directory, it must have every status change that a POST acknowledged
// (200, every object accepted or a duplicate) in the journal and, once it has caught
// up, in the execution index: nothing acknowledged is lost.
func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	bin := buildWithDeployScript(t)
	dir := t.TempDir()
	const shutdownTimeout = 20 * time.Second
	args := []string{"run", "--data-dir", dir, "--http", "127.0.0.1:0", "--shutdown-timeout", shutdownTimeout.String(),
		"--log-format", "json", "--detector-interval", "1h"}
	worker, base := startWorkerProcess(t, bin, args...)

	var (
		mu      sync.Mutex
		acked   = map[string]string{} // execution ARN -> final status, of acknowledged batches
		batches int
	)
	ackedBatches := make(chan int, 1000)
	posting := make(chan struct{})
	go func() {
		defer close(posting)
		client := &http.Client{Timeout: 30 * time.Second}
		for batch := 0; batch < 1000; batch++ {
			body, final := statusChangeBatch(batch, 50)
			resp, err := client.Post(base+"/v1/events", "application/x-ndjson", bytes.NewReader(body))
			if err != nil {
				return // the server is gone: shutting down
			}
			var rep struct{ Accepted, Duplicate, Rejected int }
			err = json.NewDecoder(resp.Body).Decode(&rep)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK || rep.Rejected > 0 || rep.Accepted+rep.Duplicate != strings.Count(string(body), "\n") {
				continue // not acknowledged as a whole: promises nothing
			}
			mu.Lock()
			for arn, st := range final {
				acked[arn] = st
			}
			batches++
			mu.Unlock()
			ackedBatches <- batch
		}
	}()
	// SIGTERM while requests keep coming and the projector has a backlog.
	for range 5 {
		select {
		case <-ackedBatches:
		case <-time.After(time.Minute):
			t.Fatalf("no batch acknowledged within a minute:\n%s", worker.output())
		}
	}
	sent := time.Now()
	require.NoError(t, worker.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-worker.done:
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatalf("the worker did not exit within --shutdown-timeout %s of SIGTERM:\n%s", shutdownTimeout, worker.output())
	}
	took := time.Since(sent)
	require.NoError(t, worker.err, "exit status 0 after SIGTERM:\n%s", worker.output())
	assert.Less(t, took, shutdownTimeout)
	assert.Contains(t, worker.output(), `"msg":"shutting down"`)
	<-posting
	mu.Lock()
	want := acked
	t.Logf("SIGTERM after %d acknowledged batches (%d executions); the worker exited in %s", batches, len(want), took.Round(time.Millisecond))
	mu.Unlock()
	require.NotEmpty(t, want)

	restarted, base := startWorkerProcess(t, bin, args...)
	deadline := time.Now().Add(2 * time.Minute)
	missing := func() []string {
		var out []string
		for arn, st := range want {
			var item struct{ Status string }
			if getJSON(base+"/v1/executions/"+url.PathEscape(arn), &item) != http.StatusOK || item.Status != st {
				out = append(out, arn+" "+st)
			}
		}
		return out
	}
	for m := missing(); len(m) > 0; m = missing() {
		require.True(t, time.Now().Before(deadline), "%d acknowledged executions not in the index after a restart, e.g. %v:\n%s", len(m), m[0], restarted.output())
		time.Sleep(100 * time.Millisecond) // poll interval
	}
	for arn, st := range want {
		session := arn[strings.LastIndex(arn, ":")+1:]
		var events struct {
			Items []struct{ Status string } `json:"items"`
		}
		require.Equal(t, http.StatusOK, getJSON(base+"/v1/sessions/"+url.PathEscape(session)+"/events", &events), session)
		var statuses []string
		for _, e := range events.Items {
			statuses = append(statuses, e.Status)
		}
		assert.Contains(t, statuses, "EXECUTION_"+st, "journal of %s", session)
	}
	require.NoError(t, restarted.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-restarted.done:
		assert.NoError(t, restarted.err)
	case <-time.After(shutdownTimeout + 5*time.Second):
		t.Fatal("the restarted worker did not exit after SIGTERM")
	}
}
