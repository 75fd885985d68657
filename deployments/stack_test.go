package deployments_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	cfntypes "github.com/aws/aws-sdk-go-v2/service/cloudformation/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/dynamodbstreams"
	"github.com/agentwatch/agentwatch/adapters/sqs"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/deployments"
)

// deployStack creates a stack of the template on moto with params and waits for
// CREATE_COMPLETE with the SDK's waiter. It is deleted when the test ends, with the
// tables its DeletionPolicy retains. It returns the stack's outputs.
func deployStack(t *testing.T, cfn *cloudformation.Client, motoDB *dynamodb.Client, name string, params map[string]string) map[string]string {
	t.Helper()
	ctx := t.Context()
	var ps []cfntypes.Parameter
	for k, v := range params {
		ps = append(ps, cfntypes.Parameter{ParameterKey: aws.String(k), ParameterValue: aws.String(v)})
	}
	_, err := cfn.CreateStack(ctx, &cloudformation.CreateStackInput{
		StackName:    aws.String(name),
		TemplateBody: aws.String(string(deployments.Template)),
		Parameters:   ps,
		Capabilities: []cfntypes.Capability{cfntypes.CapabilityCapabilityIam},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = cfn.DeleteStack(context.Background(), &cloudformation.DeleteStackInput{StackName: aws.String(name)})
		dynamotest.DeleteTables(t, motoDB, params["TablePrefix"])
	})
	w := cloudformation.NewStackCreateCompleteWaiter(cfn, func(o *cloudformation.StackCreateCompleteWaiterOptions) {
		o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second
	})
	out, err := w.WaitForOutput(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(name)}, 2*time.Minute)
	require.NoError(t, err, "stack %s", name)
	outputs := map[string]string{}
	for _, o := range out.Stacks[0].Outputs {
		outputs[aws.ToString(o.OutputKey)] = aws.ToString(o.OutputValue)
	}
	return outputs
}

// evaluatedOutputs are the template's outputs as the evaluator renders them.
func evaluatedOutputs(t *testing.T, params map[string]string) map[string]string {
	t.Helper()
	e, err := newEvaluator(loadTemplate(t), params)
	require.NoError(t, err)
	out := map[string]string{}
	for name, o := range e.t.section("Outputs") {
		v, err := e.eval(asMap(o)["Value"])
		require.NoError(t, err, name)
		out[name] = fmt.Sprint(v)
	}
	return out
}

// TestStackOnMotoCarriesAnEventToTheIndex deploys the template on moto's CloudFormation
// and runs the binary that build.sh builds, the way ECS runs it: `agentwatch migrate`
// with the operator task definition's command and environment, then `agentwatch run`
// with the worker's. A Step Functions status change put on the default event bus goes
// through the stack's EventBridge rule to the stack's queue, and the worker appends it
// to the journal and projects it into the execution index, with the agent name from
// the state machine's tags. Then the worker gets SIGTERM and must exit 0 within the
// task definition's StopTimeout.
//
// Where the parts run: moto hosts the stack (CloudFormation) and with it the queue, the
// dead-letter queue, the rule, the topic, the roles, the ECS cluster, task definitions
// and service, and the Step Functions API; the tables are made the same way in
// DynamoDB Local by migrate (the project keeps Amazon's own engine for DynamoDB and
// its streams), under the stack's prefix, and the test checks that their names are the
// stack's outputs.
//
// What moto cannot do, so this test does not check it here: it skips
// AWS::SQS::QueuePolicy (so nothing proves here that EventBridge may send to the queue;
// checkQueuePolicies does, statically), AWS::CloudWatch::Alarm (the DLQ and backlog
// alarms) and AWS::SNS::Subscription (AlertEmail's), creating nothing for them and
// reporting CREATE_COMPLETE all the same — cfn-lint checks their properties; it ignores
// TimeToLiveSpecification (TTL stays DISABLED on its tables; DynamoDB Local's, made by
// migrate, have it, and checkTables compares the template's with them); it enforces no
// IAM policy at all (checkIAM is the least-privilege check); and it runs no ECS task,
// so the container's health check and StopTimeout run here as the test's own
// subprocess calls.
func TestStackOnMotoCarriesAnEventToTheIndex(t *testing.T) {
	motoEP := mototest.Endpoint(t)
	ddbEP := dynamotest.Endpoint(t)
	bin := agentwatchBinary(t)
	t.Logf("build.sh took %s", binTook.Round(time.Millisecond))
	ctx := t.Context()
	awsCfg := mototest.AWSConfig(t)
	cfn := cloudformation.NewFromConfig(awsCfg)
	motoDB := dynamodb.NewFromConfig(awsCfg)
	sqsClient := awssqs.NewFromConfig(awsCfg)
	ddb := dynamotest.NewClient(t)
	prefix := dynamotest.TablePrefix(t, ddb)

	params := requiredParams()
	params["TablePrefix"] = prefix
	start := time.Now()
	outputs := deployStack(t, cfn, motoDB, "agentwatch-"+prefix, params)
	t.Logf("stack CREATE_COMPLETE on moto in %s", time.Since(start).Round(time.Millisecond))

	// The evaluator renders the outputs as CloudFormation (moto) does: the environment
	// the test gives the binary comes from it.
	want := evaluatedOutputs(t, params)
	for _, k := range []string{"TablePrefix", "JournalTableName", "ExecutionsTableName", "SessionsTableName", "AgentStatsTableName",
		"StuckTableName", "AlertsTableName", "ControlTableName", "QuarantineTableName", "QueueUrl", "DeadLetterQueueUrl",
		"StatusChangeRuleArn", "AlertTopicArn", "ClusterName", "LogGroupName"} {
		assert.Equal(t, want[k], outputs[k], "output %s", k)
	}

	// The queue: a redrive policy to the dead-letter queue after 5 receives, and a
	// visibility timeout that covers a batch.
	info, err := sqs.DescribeQueue(ctx, sqsClient, outputs["QueueUrl"])
	require.NoError(t, err)
	assert.Equal(t, 5, info.MaxReceiveCount)
	assert.GreaterOrEqual(t, info.VisibilityTimeout, 30*time.Second)
	dlq, err := sqs.DescribeQueue(ctx, sqsClient, outputs["DeadLetterQueueUrl"])
	require.NoError(t, err)
	assert.Equal(t, dlq.Arn, info.DLQArn)
	// The rule: the queue is its target.
	eb := eventbridge.NewFromConfig(awsCfg)
	ruleName := outputs["StatusChangeRuleArn"][strings.LastIndex(outputs["StatusChangeRuleArn"], "/")+1:]
	targets, err := eb.ListTargetsByRule(ctx, &eventbridge.ListTargetsByRuleInput{Rule: aws.String(ruleName)})
	require.NoError(t, err)
	require.Len(t, targets.Targets, 1)
	assert.Equal(t, info.Arn, aws.ToString(targets.Targets[0].Arn))
	// What moto skips: said, not failed.
	attrs, err := sqsClient.GetQueueAttributes(ctx, &awssqs.GetQueueAttributesInput{QueueUrl: aws.String(outputs["QueueUrl"]),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNamePolicy}})
	require.NoError(t, err)
	if p := attrs.Attributes[string(sqstypes.QueueAttributeNamePolicy)]; p == "" {
		t.Log("moto skipped AWS::SQS::QueuePolicy: the queue has no policy (checkQueuePolicies checks the template's)")
	} else {
		assert.Contains(t, p, outputs["StatusChangeRuleArn"], "the queue policy names the rule")
	}
	if ttl, err := motoDB.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(outputs["ExecutionsTableName"])}); err == nil &&
		ttl.TimeToLiveDescription != nil && ttl.TimeToLiveDescription.TimeToLiveStatus != "ENABLED" {
		t.Logf("moto ignored TimeToLiveSpecification: TTL of %s is %s (migrate enables it on DynamoDB Local; checkTables compares)",
			outputs["ExecutionsTableName"], ttl.TimeToLiveDescription.TimeToLiveStatus)
	}

	s := newStackShape(loadTemplate(t), params)
	require.Empty(t, s.problems)
	tds, problems := s.taskDefinitions()
	require.Empty(t, problems)
	local := map[string]string{
		"AWS_ENDPOINT_URL_DYNAMODB":         ddbEP,
		"AWS_ENDPOINT_URL_DYNAMODB_STREAMS": ddbEP,
		"AWS_ENDPOINT_URL_SQS":              motoEP,
		"AWS_ENDPOINT_URL_SFN":              motoEP,
		"AWS_ENDPOINT_URL_SNS":              motoEP,
		"AWS_ACCESS_KEY_ID":                 dynamotest.AccessKey,
		"AWS_SECRET_ACCESS_KEY":             dynamotest.AccessKey,
		"AWS_EC2_METADATA_DISABLED":         "true",
	}
	var worker taskDefinition
	for _, td := range tds {
		if td.role == roleWorker {
			worker = td
			continue
		}
		// The operator task's command as ECS runs it: migrate, onto DynamoDB Local.
		cmd := exec.CommandContext(ctx, bin, td.command...)
		cmd.Env = taskEnv(td, local, nil)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "agentwatch %s: %s", strings.Join(td.command, " "), out)
		var report []string
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if !strings.HasPrefix(line, "{") {
				report = append(report, line) // the report on stdout, not the JSON log
			}
		}
		t.Logf("agentwatch %s (operator task %s): %d lines, the last: %q", strings.Join(td.command, " "), td.name, len(report), report[len(report)-1])
	}
	for _, name := range []string{outputs["JournalTableName"], outputs["ExecutionsTableName"], outputs["ControlTableName"]} {
		_, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
		require.NoError(t, err, "migrate made the stack's table %s", name)
	}

	// A tagged state machine on moto: the worker resolves the agent name from its tags.
	sfnClient := sfn.NewFromConfig(awsCfg)
	sm, err := sfnClient.CreateStateMachine(ctx, &sfn.CreateStateMachineInput{
		Name:       aws.String(mototest.Name(t, "agent")),
		Definition: aws.String(`{"StartAt":"Done","States":{"Done":{"Type":"Succeed"}}}`),
		RoleArn:    aws.String("arn:aws:iam::" + mototest.Account + ":role/agent-sfn"),
		Tags:       []sfntypes.Tag{{Key: aws.String("agentName"), Value: aws.String("stack-e2e-agent")}},
	})
	require.NoError(t, err)
	t.Cleanup(func() {
		_, _ = sfnClient.DeleteStateMachine(context.Background(), &sfn.DeleteStateMachineInput{StateMachineArn: sm.StateMachineArn})
	})

	proc := startProcess(t, bin, taskEnv(worker, local, map[string]string{"AGENTWATCH_HTTP_ADDR": "127.0.0.1:0"}), worker.command...)
	running := proc.waitForLog(t, "agentwatch running", time.Minute)
	base := fmt.Sprint(running["http"])
	require.True(t, strings.HasPrefix(base, "http://127.0.0.1:"), "the worker logs its address: %v", running)

	smArn := aws.ToString(sm.StateMachineArn)
	execArn := strings.Replace(smArn, ":stateMachine:", ":execution:", 1) + ":run-1"
	session := "stack-e2e-" + prefix
	put := func(status string, stop *int64) {
		detail, err := json.Marshal(map[string]any{
			"executionArn": execArn, "stateMachineArn": smArn, "name": "run-1", "status": status,
			"startDate": int64(1730716200000), "stopDate": stop, "redriveCount": 0,
			"input": `{"session_id":"` + session + `"}`, "inputDetails": map[string]any{"included": true},
		})
		require.NoError(t, err)
		out, err := eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			Source: aws.String("aws.states"), DetailType: aws.String("Step Functions Execution Status Change"),
			Detail: aws.String(string(detail)), Resources: []string{execArn},
		}}})
		require.NoError(t, err)
		require.Zero(t, out.FailedEntryCount)
	}
	indexed := func(status string) map[string]any {
		var item map[string]any
		deadline := time.Now().Add(time.Minute)
		for time.Now().Before(deadline) {
			if getJSON(base+"/v1/executions/"+url.PathEscape(execArn), &item) == http.StatusOK && item["status"] == status {
				return item
			}
			time.Sleep(50 * time.Millisecond) // poll interval, not a wait for a condition
		}
		t.Fatalf("execution %s not %s in the index within a minute; worker log:\n%s", execArn, status, proc.output())
		return nil
	}

	put("RUNNING", nil)
	item := indexed("RUNNING")
	assert.Equal(t, "stack-e2e-agent", item["agentName"], "agent name from the state machine's tags")
	assert.Equal(t, session, item["sessionId"])
	stop := int64(1730716546100)
	put("SUCCEEDED", &stop)
	item = indexed("SUCCEEDED")
	assert.Equal(t, 346.1, item["durationSeconds"])
	var events struct {
		Items []map[string]any `json:"items"`
	}
	require.Equal(t, http.StatusOK, getJSON(base+"/v1/sessions/"+url.PathEscape(session)+"/events", &events))
	var statuses []string
	for _, it := range events.Items {
		statuses = append(statuses, fmt.Sprint(it["Status"]))
	}
	assert.ElementsMatch(t, []string{"EXECUTION_RUNNING", "EXECUTION_SUCCEEDED"}, statuses, "the journal on DynamoDB Local")
	// Both messages were deleted from the queue once appended.
	deadline := time.Now().Add(30 * time.Second)
	for {
		visible, inFlight := mototest.QueueCounts(t, sqsClient, outputs["QueueUrl"])
		if visible == 0 && inFlight == 0 {
			break
		}
		require.True(t, time.Now().Before(deadline), "queue not drained: %d visible, %d in flight", visible, inFlight)
		time.Sleep(100 * time.Millisecond) // poll interval
	}

	t.Run("healthcheck", func(t *testing.T) {
		// The container's health check, as ECS runs it in the task (its environment; the
		// address the worker really listens on).
		hc := stringsOf(asMap(worker.container["HealthCheck"])["Command"])
		require.Greater(t, len(hc), 2)
		cmd := exec.CommandContext(ctx, bin, hc[2:]...)
		cmd.Env = taskEnv(worker, local, map[string]string{"AGENTWATCH_HTTP_ADDR": strings.TrimPrefix(base, "http://")})
		out, err := cmd.CombinedOutput()
		assert.NoError(t, err, "agentwatch %s: %s", strings.Join(hc[2:], " "), out)
	})

	// The worker holds the journal stream's shard leases in the control table.
	desc, err := ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(outputs["JournalTableName"])})
	require.NoError(t, err)
	streamArn := aws.ToString(desc.Table.LatestStreamArn)
	leases, err := dynamodbstreams.NewDynamoDBLeaseStore(ddb, outputs["ControlTableName"])
	require.NoError(t, err)
	held, err := leases.ListLeases(ctx, streamArn)
	require.NoError(t, err)
	require.NotEmpty(t, held)
	for _, l := range held {
		require.NotEmpty(t, l.Owner, "shard %s is leased while the worker runs", l.ShardID)
	}

	// ECS stops a task with SIGTERM and kills it StopTimeout seconds later.
	stopTimeout, err := strconv.Atoi(fmt.Sprint(worker.container["StopTimeout"]))
	require.NoError(t, err)
	sent := time.Now()
	require.NoError(t, proc.cmd.Process.Signal(syscall.SIGTERM))
	exitErr, exited := proc.wait(time.Duration(stopTimeout) * time.Second)
	require.True(t, exited, "the worker did not exit within StopTimeout (%ds) of SIGTERM; log:\n%s", stopTimeout, proc.output())
	assert.NoError(t, exitErr, "exit status; log:\n%s", proc.output())
	assert.Contains(t, proc.output(), `"msg":"shutting down"`)
	t.Logf("the worker exited %s after SIGTERM", time.Since(sent).Round(time.Millisecond))
	// It released its leases with their final checkpoints, so another worker takes the
	// shards over at once, from where it stopped.
	released, err := leases.ListLeases(ctx, streamArn)
	require.NoError(t, err)
	require.Len(t, released, len(held))
	for _, l := range released {
		assert.Empty(t, l.Owner, "shard %s released on shutdown", l.ShardID)
		assert.NotEmpty(t, l.Checkpoint, "shard %s has its final checkpoint", l.ShardID)
	}
}

// TestStackOnMotoWithAnExistingJournal deploys with JournalTableName set: the stack
// makes no journal table, and names the given one in its outputs and environment.
func TestStackOnMotoWithAnExistingJournal(t *testing.T) {
	mototest.Endpoint(t)
	awsCfg := mototest.AWSConfig(t)
	cfn := cloudformation.NewFromConfig(awsCfg)
	motoDB := dynamodb.NewFromConfig(awsCfg)
	prefix := strings.ToLower(mototest.Name(t, "awj"))[:20]
	params := requiredParams()
	params["TablePrefix"] = prefix
	params["JournalTableName"] = prefix + "-agents-table-dev"
	outputs := deployStack(t, cfn, motoDB, "agentwatch-"+prefix, params)
	assert.Equal(t, params["JournalTableName"], outputs["JournalTableName"])
	_, err := motoDB.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(prefix + "-journal")})
	assert.Error(t, err, "no journal table of the stack's own")
	_, err = motoDB.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(outputs["ExecutionsTableName"])})
	assert.NoError(t, err)
	want := evaluatedOutputs(t, params)
	assert.Equal(t, want["JournalTableName"], outputs["JournalTableName"])
}

// taskEnv is a task definition's environment as ECS gives it to the container, plus
// the local endpoints and credentials, and overrides; the test process's own AWS and
// agentwatch settings are left out.
func taskEnv(td taskDefinition, local, overrides map[string]string) []string {
	env := map[string]string{}
	for _, kv := range asList(td.container["Environment"]) {
		env[fmt.Sprint(asMap(kv)["Name"])] = fmt.Sprint(asMap(kv)["Value"])
	}
	for k, v := range local {
		env[k] = v
	}
	for k, v := range overrides {
		env[k] = v
	}
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "AWS_") && !strings.HasPrefix(k, "AGENTWATCH_") {
			out = append(out, kv)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// getJSON GETs u and decodes a 200 answer into v; it returns the status (0 when the
// request failed).
func getJSON(u string, v any) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			return 0
		}
	}
	return resp.StatusCode
}

// process is an agentwatch subprocess whose output (stdout and stderr, where the logs
// go) is kept.
type process struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  strings.Builder
	logs chan map[string]any
	done chan struct{}
	err  error
}

// startProcess starts bin with args and env; it is killed when the test ends if it is
// still running.
func startProcess(t *testing.T, bin string, env []string, args ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin, args...), done: make(chan struct{}), logs: make(chan map[string]any, 1024)}
	p.cmd.Env = env
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	require.NoError(t, p.cmd.Start())
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.out.WriteString(line + "\n")
			p.mu.Unlock()
			var entry map[string]any
			if json.Unmarshal([]byte(line), &entry) == nil {
				select {
				case p.logs <- entry:
				default:
				}
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
	return p
}

func (p *process) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// waitForLog waits for a JSON log entry with the message msg and returns it.
func (p *process) waitForLog(t *testing.T, msg string, timeout time.Duration) map[string]any {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	for {
		select {
		case entry := <-p.logs:
			if entry["msg"] == msg {
				return entry
			}
		case <-p.done:
			t.Fatalf("agentwatch exited (%v) before logging %q:\n%s", p.err, msg, p.output())
		case <-timer.C:
			t.Fatalf("agentwatch did not log %q within %s:\n%s", msg, timeout, p.output())
		}
	}
}

// wait waits up to timeout for the process to exit; exited is false if it did not.
func (p *process) wait(timeout time.Duration) (err error, exited bool) {
	select {
	case <-p.done:
		return p.err, true
	case <-time.After(timeout):
		return nil, false
	}
}
