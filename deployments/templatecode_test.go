package deployments_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
)

var (
	codeTablesOnce   sync.Once
	codeTablesPrefix string
	codeTablesByName map[string]tableSchema
	codeTablesErr    error
)

// codeTables runs the code's own Migrate on DynamoDB Local under a fresh prefix and
// describes every table it made (DescribeTable, DescribeTimeToLive): the schema the
// code really creates, whatever the source says. Once per test binary; the tables are
// deleted when the first test that asked ends.
func codeTables(t *testing.T) (string, map[string]tableSchema) {
	t.Helper()
	dynamotest.Endpoint(t) // skips, or fails under CI=true, without DynamoDB Local
	codeTablesOnce.Do(func() {
		client := dynamotest.NewClient(t)
		cfg := awdynamodb.Config{TablePrefix: dynamotest.TablePrefix(t, client)}
		cfg.SetDefaults()
		codeTablesPrefix = cfg.TablePrefix
		reg := dynamotest.Registry(t)
		if _, err := awdynamodb.Migrate(t.Context(), client, cfg, reg, nil); err != nil {
			codeTablesErr = fmt.Errorf("migrate: %w", err)
			return
		}
		codeTablesByName = map[string]tableSchema{}
		for _, name := range cfg.TableRoles(reg, 1) {
			ts, err := describeTable(t.Context(), client, name)
			if err != nil {
				codeTablesErr = err
				return
			}
			codeTablesByName[name] = ts
		}
	})
	require.NoError(t, codeTablesErr)
	return codeTablesPrefix, codeTablesByName
}

// describeTable renders a live table as a tableSchema.
func describeTable(ctx context.Context, client *dynamodb.Client, name string) (tableSchema, error) {
	out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(name)})
	if err != nil {
		return tableSchema{}, fmt.Errorf("describe %s: %w", name, err)
	}
	td := out.Table
	attrTypes := map[string]string{}
	for _, d := range td.AttributeDefinitions {
		attrTypes[aws.ToString(d.AttributeName)] = string(d.AttributeType)
	}
	keyOf := func(ks []types.KeySchemaElement) string {
		var parts []string
		for _, k := range ks {
			name := aws.ToString(k.AttributeName)
			parts = append(parts, fmt.Sprintf("%s %s %s", k.KeyType, name, attrTypes[name]))
		}
		return strings.Join(parts, ", ")
	}
	ts := tableSchema{Key: keyOf(td.KeySchema), Indexes: map[string]string{}, Billing: string(types.BillingModeProvisioned)}
	if td.BillingModeSummary != nil {
		ts.Billing = string(td.BillingModeSummary.BillingMode)
	}
	for _, g := range td.GlobalSecondaryIndexes {
		proj := ""
		if g.Projection != nil {
			proj = string(g.Projection.ProjectionType)
		}
		ts.Indexes[aws.ToString(g.IndexName)] = keyOf(g.KeySchema) + "; " + proj
	}
	if ss := td.StreamSpecification; ss != nil && aws.ToBool(ss.StreamEnabled) {
		ts.Stream = string(ss.StreamViewType)
	}
	ttl, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(name)})
	if err != nil {
		return tableSchema{}, fmt.Errorf("describe TTL of %s: %w", name, err)
	}
	if d := ttl.TimeToLiveDescription; d != nil &&
		(d.TimeToLiveStatus == types.TimeToLiveStatusEnabled || d.TimeToLiveStatus == types.TimeToLiveStatusEnabling) {
		ts.TTL = aws.ToString(d.AttributeName)
	}
	return ts, nil
}

// TestTemplateMatchesCode checks the template against the code, under every
// combination of its conditions:
//   - tables: every table Migrate creates (run on DynamoDB Local) exists in the template
//     under the same name for the same prefix, with the same key schema and attribute
//     types, GSIs (keys, projection), stream view type, TTL attribute and billing mode,
//     and the template has no other table;
//   - environment: each task definition sets exactly the AGENTWATCH_* variables its
//     commands read (a type-checked walk of cmd/agentwatch's call graph from each cobra
//     subcommand), plus AWS_REGION, the webhook secret only from Secrets Manager, and
//     values that name the stack's own resources;
//   - IAM: each task role grants exactly the actions of the AWS calls its commands make
//     (a type-checked walk of the code for SDK operation inputs, waiters, paginators,
//     transaction members, and watermill-aws's calls), each on exactly the resources it
//     needs, with no wildcard action and no "*" resource;
//   - the worker's task definition: ECS waits longer than --shutdown-timeout, the health
//     check runs the image's entrypoint, a service runs it.
func TestTemplateMatchesCode(t *testing.T) {
	tpl := loadTemplate(t)
	facts := loadCodeFacts(t)
	d, err := parseDockerfile("Dockerfile")
	require.NoError(t, err)
	require.Len(t, d.Entrypoint, 1)

	t.Run("tables", func(t *testing.T) {
		prefix, code := codeTables(t)
		assert.Empty(t, checkTables(tpl, prefix, code))
		// Not the code's business, but the journal's: point-in-time recovery, and the
		// stack keeps it when deleted.
		e, err := newEvaluator(tpl, requiredParams())
		require.NoError(t, err)
		for _, res := range e.resources("AWS::DynamoDB::Table") {
			name, err := e.stringProperty(res, "TableName")
			require.NoError(t, err)
			if name != "agentwatch-journal" {
				continue
			}
			pitr, err := e.property(res, "PointInTimeRecoverySpecification")
			require.NoError(t, err)
			assert.Equal(t, true, asMap(pitr)["PointInTimeRecoveryEnabled"])
			r, _ := e.resource(res)
			assert.Equal(t, "Retain", r["DeletionPolicy"])
		}
	})
	for _, params := range templateVariants() {
		t.Run("environment/"+variantName(params), func(t *testing.T) {
			assert.Empty(t, checkEnvironment(tpl, params, facts))
		})
		t.Run("iam/"+variantName(params), func(t *testing.T) {
			assert.Empty(t, checkIAM(tpl, params, facts))
		})
		t.Run("queue-policies/"+variantName(params), func(t *testing.T) {
			assert.Empty(t, checkQueuePolicies(tpl, params))
		})
		t.Run("task-definitions/"+variantName(params), func(t *testing.T) {
			assert.Empty(t, checkTaskDefinitions(tpl, params, d.Entrypoint[0]))
		})
	}
}

// TestCheckerCatchesDrift is the test of the test: each case plants one drift in a copy
// of the template, and the check must report it.
func TestCheckerCatchesDrift(t *testing.T) {
	tpl := loadTemplate(t)
	facts := loadCodeFacts(t)
	params := requiredParams()
	resources := func(c cfnTemplate) map[string]any { return c.section("Resources") }
	props := func(c cfnTemplate, res string) map[string]any { return asMap(asMap(resources(c)[res])["Properties"]) }
	container := func(c cfnTemplate, res string) map[string]any {
		return asMap(asList(props(c, res)["ContainerDefinitions"])[0])
	}
	workerStatements := func(c cfnTemplate) []any {
		pol := asMap(asList(props(c, "TaskRole")["Policies"])[0])
		return asList(asMap(pol["PolicyDocument"])["Statement"])
	}
	statement := func(c cfnTemplate, sid string) map[string]any {
		for _, st := range workerStatements(c) {
			if asMap(st)["Sid"] == sid {
				return asMap(st)
			}
		}
		t.Fatalf("no statement %s in the worker's role", sid)
		return nil
	}
	envCases := []struct {
		name   string
		mutate func(c cfnTemplate)
		want   []string
	}{
		{"renamed environment variable", func(c cfnTemplate) {
			for _, kv := range asList(container(c, "WorkerTaskDefinition")["Environment"]) {
				if asMap(kv)["Name"] == "AGENTWATCH_SFN_QUEUE_URL" {
					asMap(kv)["Name"] = "AGENTWATCH_SQS_QUEUE_URL"
				}
			}
		}, []string{"environment lacks AGENTWATCH_SFN_QUEUE_URL", "environment sets AGENTWATCH_SQS_QUEUE_URL, which none of its commands reads"}},
		{"variable of the embedded backend", func(c cfnTemplate) {
			env := container(c, "WorkerTaskDefinition")
			env["Environment"] = append(asList(env["Environment"]), map[string]any{"Name": "AGENTWATCH_DATA_DIR", "Value": "/data"})
		}, []string{"AGENTWATCH_DATA_DIR, which the stack must not set"}},
		{"queue URL of another queue", func(c cfnTemplate) {
			for _, kv := range asList(container(c, "WorkerTaskDefinition")["Environment"]) {
				if asMap(kv)["Name"] == "AGENTWATCH_SFN_QUEUE_URL" {
					asMap(kv)["Value"] = map[string]any{"Ref": "StatusChangeDeadLetterQueue"}
				}
			}
		}, []string{"AGENTWATCH_SFN_QUEUE_URL is"}},
		{"webhook secret in plain text", func(c cfnTemplate) {
			env := container(c, "WorkerTaskDefinition")
			env["Environment"] = append(asList(env["Environment"]), map[string]any{"Name": "AGENTWATCH_WEBHOOK_SECRET", "Value": "s3cret"})
		}, []string{"AGENTWATCH_WEBHOOK_SECRET is a plain environment value"}},
	}
	for _, tc := range envCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tpl.clone()
			tc.mutate(c)
			problems := strings.Join(checkEnvironment(c, params, facts), "\n")
			for _, w := range tc.want {
				assert.Contains(t, problems, w)
			}
		})
	}
	iamCases := []struct {
		name   string
		mutate func(c cfnTemplate)
		want   []string
	}{
		{"removed action", func(c cfnTemplate) {
			st := statement(c, "Tables")
			var kept []any
			for _, a := range asList(st["Action"]) {
				if a != "dynamodb:BatchWriteItem" {
					kept = append(kept, a)
				}
			}
			st["Action"] = kept
		}, []string{"lacks dynamodb:BatchWriteItem, which the code calls at dynamodb/batch.go"}},
		{"wildcard action", func(c cfnTemplate) {
			st := statement(c, "StatusChangeQueue")
			st["Action"] = append(asList(st["Action"]), "sqs:*")
		}, []string{`wildcard action "sqs:*"`}},
		{"star resource", func(c cfnTemplate) {
			statement(c, "AgentNamesFromTags")["Resource"] = "*"
		}, []string{`statement AgentNamesFromTags: Resource "*"`, "lacks states:ListTagsForResource"}},
		{"action the code does not call", func(c cfnTemplate) {
			st := statement(c, "StatusChangeQueue")
			st["Action"] = append(asList(st["Action"]), "sqs:PurgeQueue")
		}, []string{"grants sqs:PurgeQueue, which the code does not call"}},
		{"migrate's action on the worker", func(c cfnTemplate) {
			st := statement(c, "Tables")
			st["Action"] = append(asList(st["Action"]), "dynamodb:UpdateTimeToLive")
		}, []string{"grants dynamodb:UpdateTimeToLive, which only the other task's commands call"}},
		{"index grants dropped", func(c cfnTemplate) {
			st := statement(c, "Indexes")
			st["Resource"] = asList(st["Resource"])[1:]
		}, []string{"grants dynamodb:Query without [index:Executions]"}},
		{"table outside the stack", func(c cfnTemplate) {
			st := statement(c, "Tables")
			st["Resource"] = append(asList(st["Resource"]), map[string]any{"Fn::Sub": "arn:${AWS::Partition}:dynamodb:${AWS::Region}:${AWS::AccountId}:table/other-app"})
		}, []string{"table/other-app is none of agentwatch's tables"}},
		{"execution role with data access", func(c cfnTemplate) {
			pol := asMap(asList(props(c, "ExecutionRole")["Policies"])[0])
			doc := asMap(pol["PolicyDocument"])
			doc["Statement"] = append(asList(doc["Statement"]), map[string]any{"Effect": "Allow", "Action": "dynamodb:GetItem", "Resource": "*"})
		}, []string{"(execution role) grants dynamodb:GetItem"}},
	}
	for _, tc := range iamCases {
		t.Run(tc.name, func(t *testing.T) {
			c := tpl.clone()
			tc.mutate(c)
			problems := strings.Join(checkIAM(c, params, facts), "\n")
			for _, w := range tc.want {
				assert.Contains(t, problems, w)
			}
		})
	}
	t.Run("queue policy without its source rule", func(t *testing.T) {
		c := tpl.clone()
		pol := asMap(props(c, "StatusChangeQueuePolicy")["PolicyDocument"])
		delete(asMap(asList(pol["Statement"])[0]), "Condition")
		problems := strings.Join(checkQueuePolicies(c, params), "\n")
		assert.Contains(t, problems, "from one rule (aws:SourceArn)")
		assert.Contains(t, problems, "no queue policy lets it")
	})
	t.Run("dead-letter queue policy missing", func(t *testing.T) {
		c := tpl.clone()
		delete(resources(c), "StatusChangeDeadLetterQueuePolicy")
		assert.Contains(t, strings.Join(checkQueuePolicies(c, params), "\n"), "-status-changes-dlq: rule")
	})
	t.Run("stop timeout shorter than the graceful shutdown", func(t *testing.T) {
		c := tpl.clone()
		container(c, "WorkerTaskDefinition")["StopTimeout"] = 30
		assert.Contains(t, strings.Join(checkTaskDefinitions(c, params, "/agentwatch"), "\n"), "ECS would SIGKILL the worker")
	})
	t.Run("read-only operator without a writable /tmp", func(t *testing.T) {
		c := tpl.clone()
		delete(container(c, "OperatorTaskDefinition"), "MountPoints")
		assert.Contains(t, strings.Join(checkTaskDefinitions(c, params, "/agentwatch"), "\n"), "writable volume at /tmp")
	})
	t.Run("health check through a shell", func(t *testing.T) {
		c := tpl.clone()
		asMap(container(c, "WorkerTaskDefinition")["HealthCheck"])["Command"] = []any{"CMD-SHELL", "curl -f http://localhost:8080/healthz"}
		assert.Contains(t, strings.Join(checkTaskDefinitions(c, params, "/agentwatch"), "\n"), "HealthCheck.Command")
	})

	tableCases := []struct {
		name   string
		mutate func(c cfnTemplate)
		want   string
	}{
		{"dropped GSI", func(c cfnTemplate) {
			p := props(c, "ExecutionsTable")
			p["GlobalSecondaryIndexes"] = asList(p["GlobalSecondaryIndexes"])[:1]
		}, "-executions: lacks index StatusDateIndex"},
		{"index keyed differently", func(c cfnTemplate) {
			ix := asMap(asList(props(c, "StuckTable")["GlobalSecondaryIndexes"])[0])
			asMap(asList(ix["KeySchema"])[1])["AttributeName"] = "nextCheck"
		}, "-stuck: index DueIndex is"},
		{"sort key type", func(c cfnTemplate) {
			for _, d := range asList(props(c, "AgentStatsTable")["AttributeDefinitions"]) {
				if asMap(d)["AttributeName"] == "bucket" {
					asMap(d)["AttributeType"] = "N"
				}
			}
		}, "-agent-stats: key is"},
		{"no TTL", func(c cfnTemplate) {
			delete(props(c, "ExecutionsTable"), "TimeToLiveSpecification")
		}, `-executions: TTL attribute is "", the code's is "expiresAt"`},
		{"stream view", func(c cfnTemplate) {
			asMap(props(c, "JournalTable")["StreamSpecification"])["StreamViewType"] = "KEYS_ONLY"
		}, `-journal: stream is "KEYS_ONLY"`},
		{"missing table", func(c cfnTemplate) {
			delete(resources(c), "QuarantineTable")
		}, "-quarantine: the code creates it, the template has no such table"},
		{"renamed table", func(c cfnTemplate) {
			props(c, "SessionsTable")["TableName"] = map[string]any{"Fn::Sub": "${TablePrefix}-session"}
		}, "-session: the template creates it, the code uses no such table"},
	}
	for _, tc := range tableCases {
		t.Run(tc.name, func(t *testing.T) {
			prefix, code := codeTables(t)
			c := tpl.clone()
			tc.mutate(c)
			assert.Contains(t, strings.Join(checkTables(c, prefix, code), "\n"), tc.want)
		})
	}
}
