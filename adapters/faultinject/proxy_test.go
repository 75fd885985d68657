package faultinject_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	dtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodbstreams"
	awssqs "github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/faultinject"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
)

// upstream is a stand-in server that records the requests that reach it.
type upstream struct {
	*httptest.Server
	mu     sync.Mutex
	bodies []string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.bodies = append(u.bodies, string(b))
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) received() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.bodies...)
}

func newProxy(t *testing.T, upstreamURL string, rules ...faultinject.Rule) *faultinject.Proxy {
	t.Helper()
	p, err := faultinject.New(faultinject.Config{Upstream: upstreamURL, Rules: rules, Seed: 1})
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// call sends one AWS JSON-protocol request for target ("DynamoDB_20120810.PutItem") to
// the proxy, on a fresh connection.
func call(t *testing.T, p *faultinject.Proxy, target, body string) (*http.Response, string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, p.URL()+"/", strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Target", target)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, string(b), err
}

func TestProxyFaultKinds(t *testing.T) {
	tests := []struct {
		name          string
		rule          faultinject.Rule
		target        string
		wantStatus    int // 0: the connection is closed without an answer
		wantType      string
		wantForwarded bool
	}{
		{"no fault", faultinject.Rule{Kind: faultinject.Throttle, Rate: 0}, "DynamoDB_20120810.PutItem", 200, "", true},
		{"DynamoDB throttled", faultinject.Rule{Kind: faultinject.Throttle, Rate: 1}, "DynamoDB_20120810.PutItem", 400,
			"ProvisionedThroughputExceededException", false},
		{"Streams throttled", faultinject.Rule{Kind: faultinject.Throttle, Rate: 1}, "DynamoDBStreams_20120810.GetRecords", 400,
			"ThrottlingException", false},
		{"SQS throttled", faultinject.Rule{Kind: faultinject.Throttle, Rate: 1}, "AmazonSQS.ReceiveMessage", 400, "RequestThrottled", false},
		{"server error", faultinject.Rule{Kind: faultinject.ServerError, Rate: 1}, "DynamoDB_20120810.UpdateItem", 500,
			"InternalServerError", false},
		{"service unavailable", faultinject.Rule{Kind: faultinject.ServerError, Rate: 1, Status: 503}, "AmazonSQS.DeleteMessage", 503,
			"InternalError", false},
		{"request dropped", faultinject.Rule{Kind: faultinject.DropRequest, Rate: 1}, "DynamoDB_20120810.PutItem", 0, "", false},
		{"response dropped after the request was applied", faultinject.Rule{Kind: faultinject.DropResponse, Rate: 1},
			"DynamoDB_20120810.PutItem", 0, "", true},
		{"delayed", faultinject.Rule{Kind: faultinject.Delay, Rate: 1, Delay: 100 * time.Millisecond}, "DynamoDB_20120810.GetItem", 200, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			up := newUpstream(t)
			p := newProxy(t, up.URL, tt.rule)
			start := time.Now()
			resp, body, err := call(t, p, tt.target, `{"n":1}`)
			if tt.wantStatus == 0 {
				require.Error(t, err, "the connection is closed without an answer")
			} else {
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, resp.StatusCode)
				if tt.wantType != "" {
					assert.Contains(t, body, "#"+tt.wantType)
					assert.Equal(t, tt.wantType, resp.Header.Get("X-Amzn-ErrorType"))
				} else {
					assert.JSONEq(t, `{"ok":true}`, body)
				}
			}
			if tt.wantForwarded {
				assert.Equal(t, []string{`{"n":1}`}, up.received(), "the upstream got the request, unchanged")
			} else {
				assert.Empty(t, up.received(), "the upstream never saw the request")
			}
			if tt.rule.Kind == faultinject.Delay {
				assert.GreaterOrEqual(t, time.Since(start), tt.rule.Delay/2, "held for at least half the delay")
			}
			_, op, _ := strings.Cut(tt.target, ".")
			st := p.Stats()
			assert.Equal(t, int64(1), st.Requests[op])
			if tt.rule.Rate > 0 {
				assert.Equal(t, int64(1), st.Injected[faultinject.Key{Operation: op, Kind: tt.rule.Kind}])
			} else {
				assert.Zero(t, st.Total())
			}
		})
	}
}

func TestProxyRulesMatchRateLimitAndSwap(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL,
		faultinject.Rule{Service: faultinject.ServiceStreams, Operations: []string{"GetRecords"}, Kind: faultinject.ServerError, Rate: 1, Limit: 2},
		faultinject.Rule{Service: faultinject.ServiceDynamoDB, Kind: faultinject.Throttle, Rate: 0.2},
	)
	const n = 500
	throttled := 0
	for range n {
		resp, _, err := call(t, p, "DynamoDB_20120810.Query", "{}")
		require.NoError(t, err)
		if resp.StatusCode == 400 {
			throttled++
		}
	}
	assert.InDelta(t, 0.2*n, throttled, 0.06*n, "about 20%% of %d requests throttled", n)
	assert.Equal(t, int64(throttled), p.Stats().Total(faultinject.Throttle))

	statuses := []int{}
	for range 4 {
		resp, _, err := call(t, p, "DynamoDBStreams_20120810.GetRecords", "{}")
		require.NoError(t, err)
		statuses = append(statuses, resp.StatusCode)
	}
	assert.Equal(t, []int{500, 500, 200, 200}, statuses, "the budget of 2 is spent, then requests pass")
	resp, _, err := call(t, p, "DynamoDBStreams_20120810.DescribeStream", "{}")
	require.NoError(t, err)
	assert.Equal(t, 200, resp.StatusCode, "another operation of the service does not match")

	require.NoError(t, p.SetRules(nil))
	for range 50 {
		resp, _, err := call(t, p, "DynamoDB_20120810.Query", "{}")
		require.NoError(t, err)
		require.Equal(t, 200, resp.StatusCode, "no faults once the rules are gone")
	}
}

func TestProxyRejectsInvalidRules(t *testing.T) {
	_, err := faultinject.New(faultinject.Config{Upstream: "127.0.0.1:1"})
	require.ErrorContains(t, err, "Upstream")
	_, err = faultinject.New(faultinject.Config{Upstream: "http://127.0.0.1:1", Rules: []faultinject.Rule{
		{Kind: "explode", Rate: 2, Limit: -1, Service: "s3"},
		{Kind: faultinject.Delay, Rate: 1},
		{Kind: faultinject.ServerError, Rate: 1, Status: 404},
	}})
	require.Error(t, err)
	for _, want := range []string{"rule 0", "Kind", "Rate", "Limit", "Service", "rule 1", "Delay", "rule 2", "Status"} {
		assert.Contains(t, err.Error(), want)
	}
}

// awsConfig is an SDK configuration with one attempt per call unless attempts says
// otherwise.
func awsConfig(t *testing.T, attempts int) aws.Config {
	cfg, err := config.LoadDefaultConfig(t.Context(), config.WithRegion(dynamotest.Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(dynamotest.AccessKey, dynamotest.AccessKey, "")),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = attempts })
		}))
	require.NoError(t, err)
	return cfg
}

// The SDK reads the injected errors as the services' own: typed where the service
// model has the type, with the code its retryer knows as throttling.
func TestProxyErrorsAsTheSDKSeesThem(t *testing.T) {
	ddbEndpoint := dynamotest.Endpoint(t)
	motoEndpoint := mototest.Endpoint(t)
	throttle := faultinject.Rule{Kind: faultinject.Throttle, Rate: 1}
	ctx := t.Context()

	t.Run("DynamoDB", func(t *testing.T) {
		p := newProxy(t, ddbEndpoint, throttle)
		c := dynamodb.NewFromConfig(awsConfig(t, 1), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL()) })
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
		var pte *dtypes.ProvisionedThroughputExceededException
		require.ErrorAs(t, err, &pte, "checksum validated too: %v", err)
	})
	t.Run("DynamoDB Streams", func(t *testing.T) {
		p := newProxy(t, ddbEndpoint, throttle)
		c := dynamodbstreams.NewFromConfig(awsConfig(t, 1), func(o *dynamodbstreams.Options) { o.BaseEndpoint = aws.String(p.URL()) })
		_, err := c.ListStreams(ctx, &dynamodbstreams.ListStreamsInput{})
		var api smithy.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, "ThrottlingException", api.ErrorCode())
	})
	t.Run("SQS", func(t *testing.T) {
		p := newProxy(t, motoEndpoint, throttle)
		c := awssqs.NewFromConfig(awsConfig(t, 1), func(o *awssqs.Options) { o.BaseEndpoint = aws.String(p.URL()) })
		_, err := c.ListQueues(ctx, &awssqs.ListQueuesInput{})
		var api smithy.APIError
		require.ErrorAs(t, err, &api)
		assert.Equal(t, "RequestThrottled", api.ErrorCode())
	})
	t.Run("throttling is retried by the SDK", func(t *testing.T) {
		p := newProxy(t, ddbEndpoint, faultinject.Rule{Kind: faultinject.Throttle, Rate: 1, Limit: 2})
		c := dynamodb.NewFromConfig(awsConfig(t, 3), func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(p.URL()) })
		_, err := c.ListTables(ctx, &dynamodb.ListTablesInput{})
		require.NoError(t, err)
		assert.Equal(t, int64(3), p.Stats().Requests["ListTables"])
	})
}

// A conditional write whose response is dropped was applied; the SDK retries it, and
// the retry fails its condition: the trap that idempotent writers must get out of.
func TestProxyDropResponseAppliesTheWrite(t *testing.T) {
	ddb := dynamotest.NewClient(t)
	table := dynamotest.TablePrefix(t, ddb) + "-t"
	_, err := ddb.CreateTable(t.Context(), &dynamodb.CreateTableInput{TableName: aws.String(table), BillingMode: dtypes.BillingModePayPerRequest,
		AttributeDefinitions: []dtypes.AttributeDefinition{{AttributeName: aws.String("PK"), AttributeType: dtypes.ScalarAttributeTypeS}},
		KeySchema:            []dtypes.KeySchemaElement{{AttributeName: aws.String("PK"), KeyType: dtypes.KeyTypeHash}}})
	require.NoError(t, err)

	p := newProxy(t, dynamotest.Endpoint(t), faultinject.Rule{Service: faultinject.ServiceDynamoDB, Operations: []string{"PutItem"},
		Kind: faultinject.DropResponse, Rate: 1, Limit: 1})
	c := dynamodb.NewFromConfig(awsConfig(t, 3), func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(p.URL())
		o.DisableValidateResponseChecksum = true
	})
	_, err = c.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: aws.String(table),
		Item:                map[string]dtypes.AttributeValue{"PK": &dtypes.AttributeValueMemberS{Value: "a"}},
		ConditionExpression: aws.String("attribute_not_exists(PK)")})
	var ccf *dtypes.ConditionalCheckFailedException
	require.ErrorAs(t, err, &ccf, "the retry of the applied write fails its condition")
	out, err := ddb.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table), ConsistentRead: aws.Bool(true),
		Key: map[string]dtypes.AttributeValue{"PK": &dtypes.AttributeValueMemberS{Value: "a"}}})
	require.NoError(t, err)
	assert.NotEmpty(t, out.Item, "the first attempt was applied")
	st := p.Stats()
	assert.Equal(t, int64(2), st.Requests["PutItem"])
	assert.Equal(t, int64(1), st.Injected[faultinject.Key{Operation: "PutItem", Kind: faultinject.DropResponse}])
}

// Requests that arrive while the proxy is closed fail to connect; Close is idempotent.
func TestProxyClose(t *testing.T) {
	up := newUpstream(t)
	p := newProxy(t, up.URL)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	_, err := http.Post(p.URL(), "application/json", bytes.NewReader(nil))
	require.Error(t, err)
	assert.False(t, errors.Is(err, context.Canceled))
}
