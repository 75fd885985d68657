// Package dynamotest connects tests to a DynamoDB server — Amazon DynamoDB Local, which
// .ci/run starts — and gives each test its own fresh tables.
//
// The server's endpoint comes from AGENTWATCH_TEST_DYNAMODB_ENDPOINT. When it is unset
// or the server does not answer, a test fails under CI=true (CI must never skip what it
// is meant to prove) and is skipped otherwise, with a hint on how to start one.
package dynamotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections"
)

// EndpointEnv names the variable that holds the test server's endpoint URL.
const EndpointEnv = "AGENTWATCH_TEST_DYNAMODB_ENDPOINT"

// Region and AccessKey are fixed: DynamoDB Local keeps one database per access key and
// region, so every test process must use the same ones to see the same tables.
const (
	Region    = "us-east-1"
	AccessKey = "local"
)

const hint = "start DynamoDB Local (see ../shared/LOCAL-AWS.md, or run .ci/run) and set " + EndpointEnv + "=http://127.0.0.1:PORT"

var (
	probeOnce sync.Once
	probeErr  error
)

// Endpoint returns the test server's endpoint. When there is none, or it does not
// answer, the test fails if CI=true and is skipped otherwise.
func Endpoint(t testing.TB) string {
	t.Helper()
	ep := os.Getenv(EndpointEnv)
	if ep == "" {
		unavailable(t, EndpointEnv+" is not set")
		return ""
	}
	probeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, probeErr = client(ctx, ep).ListTables(ctx, &dynamodb.ListTablesInput{Limit: aws.Int32(1)})
	})
	if probeErr != nil {
		unavailable(t, "DynamoDB at "+ep+" does not answer: "+probeErr.Error())
	}
	return ep
}

func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("DynamoDB is required under CI=true: %s; %s", why, hint)
	}
	t.Skipf("no DynamoDB: %s; %s", why, hint)
}

// client builds a client for endpoint with the fixed region and key, through the SDK's
// configuration loader (static credentials; the endpoint as BaseEndpoint).
func client(ctx context.Context, endpoint string, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(Region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(AccessKey, AccessKey, "")))
	if err != nil {
		panic(err) // static settings: cannot fail
	}
	opts := append([]func(*dynamodb.Options){func(o *dynamodb.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.DisableValidateResponseChecksum = true
	}}, optFns...)
	return dynamodb.NewFromConfig(cfg, opts...)
}

// NewClient returns a client of the test server (see Endpoint).
func NewClient(t testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	t.Helper()
	return client(t.Context(), Endpoint(t), optFns...)
}

// TablePrefix returns a table prefix no other test uses, and deletes every table that
// starts with it when the test ends.
func TablePrefix(t testing.TB, c *dynamodb.Client) string {
	t.Helper()
	var b [5]byte
	_, _ = rand.Read(b[:])
	prefix := "awt" + hex.EncodeToString(b[:])
	t.Cleanup(func() { DeleteTables(t, c, prefix) })
	return prefix
}

// DeleteTables deletes every table whose name starts with prefix + "-".
func DeleteTables(t testing.TB, c *dynamodb.Client, prefix string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := dynamodb.NewListTablesPaginator(c, &dynamodb.ListTablesInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("list tables to delete: %v", err)
			return
		}
		for _, name := range page.TableNames {
			if !strings.HasPrefix(name, prefix+"-") {
				continue
			}
			if _, err := c.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
				t.Errorf("delete table %s: %v", name, err)
			}
		}
	}
}

// Migrated returns the Config of fresh, migrated tables for t (a new prefix), deleted
// when the test ends.
func Migrated(t testing.TB, c *dynamodb.Client) awdynamodb.Config {
	t.Helper()
	cfg := awdynamodb.Config{TablePrefix: TablePrefix(t, c)}
	cfg.SetDefaults()
	if _, err := awdynamodb.Migrate(t.Context(), c, cfg, Registry(t), nil); err != nil {
		t.Fatalf("migrate %s: %v", cfg.TablePrefix, err)
	}
	return cfg
}

// MigratedWithoutStream is Migrated with the journal in a table of its own that has no
// stream: DynamoDB Local writes to stream-enabled tables about five times slower, and
// after some 50,000 stream records slows to ~60 items/s. Stores behave the same with
// or without a stream; only stream consumers need one. The migrated journal table
// (with its stream) exists too, unused.
func MigratedWithoutStream(t testing.TB, c *dynamodb.Client) awdynamodb.Config {
	t.Helper()
	cfg := Migrated(t, c)
	cfg.JournalTable = cfg.TablePrefix + "-journal-nostream"
	_, err := c.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName: aws.String(cfg.JournalTable),
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("PK"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("SK"), KeyType: types.KeyTypeRange},
		},
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("PK"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("SK"), AttributeType: types.ScalarAttributeTypeS},
		},
		BillingMode: types.BillingModePayPerRequest,
	})
	if err != nil {
		t.Fatalf("create journal table without stream: %v", err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay, o.MaxDelay = 100*time.Millisecond, time.Second })
	if err := w.Wait(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(cfg.JournalTable)}, time.Minute); err != nil {
		t.Fatalf("wait for journal table: %v", err)
	}
	return cfg
}

// Registry is every read model agentwatch registers, with the default configuration:
// what Migrated creates tables for.
func Registry(t testing.TB) *projections.Registry {
	t.Helper()
	reg, err := app.NewRegistry(app.Config{})
	if err != nil {
		t.Fatalf("register read models: %v", err)
	}
	return reg
}
