// Package mototest connects tests to moto's standalone server — the local stand-in for
// SQS, SNS, EventBridge and the Step Functions API that .ci/run starts — and names the
// resources each test creates on it.
//
// The server's endpoint comes from AGENTWATCH_TEST_MOTO_ENDPOINT. When it is unset or the
// server does not answer, a test fails under CI=true (CI must never skip what it is meant
// to prove) and is skipped otherwise, with a hint on how to start one.
//
// One server is shared by every test package, and packages run in parallel: tests never
// reset it (POST /moto-api/reset would wipe the others' queues); they create resources
// under unique names (Name) instead.
package mototest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// EndpointEnv names the variable that holds the moto server's URL.
const EndpointEnv = "AGENTWATCH_TEST_MOTO_ENDPOINT"

// Region and Account are moto's: every ARN it makes names account 123456789012.
const (
	Region  = "us-east-1"
	Account = "123456789012"
)

const hint = "start moto's server (see ../shared/LOCAL-AWS.md, or run .ci/run) and set " + EndpointEnv + "=http://127.0.0.1:PORT"

var (
	probeOnce sync.Once
	probeErr  error
)

// Endpoint returns the moto server's URL. When there is none, or it does not answer,
// the test fails if CI=true and is skipped otherwise.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := strings.TrimRight(os.Getenv(EndpointEnv), "/")
	if ep == "" {
		unavailable(t, EndpointEnv+" is not set")
		return ""
	}
	probeOnce.Do(func() { probeErr = probe(ep) })
	if probeErr != nil {
		unavailable(t, "moto at "+ep+" does not answer: "+probeErr.Error())
	}
	return ep
}

func probe(ep string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, ep+"/moto-api/", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /moto-api/: %s", resp.Status)
	}
	return nil
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("moto is required under CI=true: %s; %s", why, hint)
	}
	t.Skipf("no moto: %s; %s", why, hint)
}

// AWSConfig returns an SDK configuration whose every service client talks to moto:
// Region, static credentials, and the server as BaseEndpoint.
func AWSConfig(t testing.TB) aws.Config {
	t.Helper()
	ep := Endpoint(t)
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithBaseEndpoint(ep))
	if err != nil {
		t.Fatalf("load AWS config for moto: %v", err)
	}
	return cfg
}

var unsafe = regexp.MustCompile(`[^A-Za-z0-9_-]+`)

// Name returns a name unique to this run, made of prefix and the test's name, safe for
// any resource moto makes (queues, topics, state machines, rules, buses: letters, digits,
// '-' and '_'; at most 64 characters).
func Name(t testing.TB, prefix string) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	suffix := "-" + hex.EncodeToString(b[:])
	base := unsafe.ReplaceAllString(prefix+"-"+t.Name(), "-")
	if room := 64 - len(suffix); len(base) > room {
		base = base[:room]
	}
	return base + suffix
}

// Queue is a queue with a dead-letter queue, made by CreateQueueWithDLQ.
type Queue struct {
	URL, Arn       string
	DLQURL, DLQArn string
}

// CreateQueueWithDLQ creates the queue name and its dead-letter queue name+"-dlq", with
// a redrive policy that moves a message there after maxReceiveCount receives, and the
// given visibility timeout (whole seconds). The queues are deleted when the test ends.
func CreateQueueWithDLQ(t testing.TB, client *sqs.Client, name string, maxReceiveCount int, visibility time.Duration) Queue {
	t.Helper()
	ctx := context.Background()
	var q Queue
	q.DLQURL, q.DLQArn = createQueue(t, ctx, client, name+"-dlq", nil)
	policy, err := json.Marshal(map[string]string{"deadLetterTargetArn": q.DLQArn, "maxReceiveCount": strconv.Itoa(maxReceiveCount)})
	if err != nil {
		t.Fatal(err)
	}
	q.URL, q.Arn = createQueue(t, ctx, client, name, map[string]string{
		string(types.QueueAttributeNameRedrivePolicy):     string(policy),
		string(types.QueueAttributeNameVisibilityTimeout): strconv.Itoa(int(visibility / time.Second)),
	})
	return q
}

// CreateQueue creates a plain queue and returns its URL and ARN; it is deleted when the
// test ends.
func CreateQueue(t testing.TB, client *sqs.Client, name string, attrs map[string]string) (url, arn string) {
	t.Helper()
	return createQueue(t, context.Background(), client, name, attrs)
}

func createQueue(t testing.TB, ctx context.Context, client *sqs.Client, name string, attrs map[string]string) (string, string) {
	t.Helper()
	out, err := client.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatalf("create queue %s: %v", name, err)
	}
	url := aws.ToString(out.QueueUrl)
	t.Cleanup(func() {
		_, _ = client.DeleteQueue(context.Background(), &sqs.DeleteQueueInput{QueueUrl: aws.String(url)})
	})
	a, err := client.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatalf("queue %s ARN: %v", name, err)
	}
	return url, a.Attributes[string(types.QueueAttributeNameQueueArn)]
}

// QueueCounts returns a queue's ApproximateNumberOfMessages (visible) and
// ApproximateNumberOfMessagesNotVisible (in flight).
func QueueCounts(t testing.TB, client *sqs.Client, url string) (visible, inFlight int) {
	t.Helper()
	out, err := client.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
		AttributeNames: []types.QueueAttributeName{types.QueueAttributeNameApproximateNumberOfMessages,
			types.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	if err != nil {
		t.Fatalf("queue counts of %s: %v", url, err)
	}
	visible, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessages)])
	inFlight, _ = strconv.Atoi(out.Attributes[string(types.QueueAttributeNameApproximateNumberOfMessagesNotVisible)])
	return visible, inFlight
}
