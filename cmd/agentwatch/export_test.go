package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/s3"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
)

// exportEvents are the seeds' events plus status changes of four more executions, of
// two more agents, on two more days.
func exportEvents() string {
	var b strings.Builder
	b.WriteString(seedEvents)
	for i, x := range []struct {
		agent, status string
		start         time.Time
	}{
		{"billing-agent", "SUCCEEDED", time.Date(2024, 11, 5, 9, 0, 0, 0, time.UTC)},
		{"billing-agent", "FAILED", time.Date(2024, 11, 5, 10, 0, 0, 0, time.UTC)},
		{"research-agent", "RUNNING", time.Date(2024, 11, 6, 11, 0, 0, 0, time.UTC)},
		{"research-agent", "TIMED_OUT", time.Date(2024, 11, 7, 12, 0, 0, 0, time.UTC)},
	} {
		arn := fmt.Sprintf("arn:aws:states:us-east-1:123456789012:execution:%s:exec-%d", x.agent, i)
		stop := "null"
		if x.status != "RUNNING" {
			stop = fmt.Sprint(x.start.Add(90 * time.Second).UnixMilli())
		}
		fmt.Fprintf(&b, `{"version":"0","id":"e-%d","detail-type":"Step Functions Execution Status Change","source":"aws.states","detail":{"executionArn":%q,"stateMachineArn":"arn:aws:states:us-east-1:123456789012:stateMachine:%s","name":"exec-%d","status":%q,"startDate":%d,"stopDate":%s,"input":"{\"session_id\":\"sess-%d\"}"}}`+"\n",
			i, arn, x.agent, i, x.status, x.start.UnixMilli(), stop, i)
	}
	return b.String()
}

// exportRig is a data dir with exportEvents ingested through the command tree.
func exportRig(t *testing.T) []string {
	args := []string{"--data-dir", t.TempDir(), "--log-level", "error"}
	root := newRootCommand()
	root.SetArgs(append([]string{"ingest", "-"}, args...))
	root.SetIn(strings.NewReader(exportEvents()))
	var out bytes.Buffer
	root.SetOut(&out)
	require.NoError(t, root.ExecuteContext(t.Context()))
	require.Contains(t, out.String(), "12 accepted, 3 duplicate, 0 rejected")
	return args
}

// listed is what `executions list --json --all` (GET /v1/executions) answers, oldest
// first, as generic JSON.
func listed(t *testing.T, args []string, filters ...string) []map[string]any {
	out, err := runCLI(t.Context(), append(append([]string{"executions", "list", "--json", "--all"}, filters...), args...)...)
	require.NoError(t, err)
	var page struct{ Items []map[string]any }
	require.NoError(t, json.Unmarshal([]byte(out), &page))
	slices.Reverse(page.Items)
	return page.Items
}

// ndjson decodes NDJSON, failing on any line that is not one JSON object.
func ndjson(t *testing.T, r io.Reader) []map[string]any {
	var items []map[string]any
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var it map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &it), sc.Text())
		items = append(items, it)
	}
	require.NoError(t, sc.Err())
	return items
}

func TestExportCommandToFile(t *testing.T) {
	args := exportRig(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "executions.ndjson")
	out, err := runCLI(t.Context(), append([]string{"export", "--since", "2024-11-01", "--out", file, "--page-size", "2"}, args...)...)
	require.NoError(t, err)
	assert.Equal(t, "exported 5 executions to "+file+"\n", out)

	f, err := os.Open(file)
	require.NoError(t, err)
	defer f.Close()
	got := ndjson(t, f)
	want := listed(t, args, "--from", "2024-11-01")
	require.Len(t, want, 5)
	assert.Equal(t, want, got, "the items of GET /v1/executions, oldest first, over pages of 2")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary file left beside it")

	t.Run("filters", func(t *testing.T) {
		for _, tt := range []struct {
			flags []string
			want  int
		}{
			{[]string{"--since", "2024-11-05"}, 4},
			{[]string{"--since", "2024-11-01", "--until", "2024-11-05"}, 3},
			{[]string{"--since", "2024-11-01", "--agent", "billing-agent"}, 2},
			{[]string{"--since", "2024-11-01", "--status", "failed"}, 1},
			{[]string{"--since", "2024-12-01"}, 0},
		} {
			_, err := runCLI(t.Context(), append(append([]string{"export", "--out", file}, tt.flags...), args...)...)
			require.NoError(t, err, tt.flags)
			b, err := os.ReadFile(file)
			require.NoError(t, err)
			assert.Len(t, ndjson(t, bytes.NewReader(b)), tt.want, tt.flags)
		}
	})
	t.Run("a failed export leaves the file as it was", func(t *testing.T) {
		require.NoError(t, os.WriteFile(file, []byte("before\n"), 0o644))
		_, err := runCLI(t.Context(), append([]string{"export", "--since", "2024-11-01", "--out", filepath.Join(dir, "missing", "x.ndjson")}, args...)...)
		require.Error(t, err)
		_, err = runCLI(t.Context(), append([]string{"export", "--since", "2024-11-01", "--status", "DONE", "--out", file}, args...)...)
		require.Error(t, err)
		b, err := os.ReadFile(file)
		require.NoError(t, err)
		assert.Equal(t, "before\n", string(b))
	})
}

func TestExportCommandToStdout(t *testing.T) {
	args := exportRig(t)
	var out, errOut bytes.Buffer
	root := newRootCommand()
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"export", "--since", "2024-11-04", "--agent", "my-agent"}, args...))
	require.NoError(t, root.ExecuteContext(t.Context()))
	got := ndjson(t, &out) // nothing but items on stdout
	require.Len(t, got, 1)
	assert.Equal(t, listed(t, args, "--agent", "my-agent"), got)
	assert.Equal(t, "SUCCEEDED", got[0]["status"])
	assert.Equal(t, 346.1, got[0]["durationSeconds"])
	assert.Equal(t, "exported 1 executions to stdout\n", errOut.String())

	_, err := runCLI(t.Context(), append([]string{"export"}, args...)...)
	require.ErrorContains(t, err, "since")
}

func TestExportCommandToS3OnMoto(t *testing.T) {
	ep := mototest.Endpoint(t)
	args := exportRig(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", ep)
	t.Setenv("AWS_REGION", mototest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "test")
	client := awss3.NewFromConfig(mototest.AWSConfig(t), func(o *awss3.Options) {
		o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true
	})
	bucket := strings.ToLower(mototest.Name(t, "exp"))
	bucket = strings.Trim(strings.ReplaceAll(bucket[max(0, len(bucket)-63):], "_", "-"), "-")
	_, err := client.CreateBucket(t.Context(), &awss3.CreateBucketInput{Bucket: aws.String(bucket)})
	require.NoError(t, err)

	out, err := runCLI(t.Context(), append([]string{"export", "--since", "2024-11-01", "--out", "s3://" + bucket + "/analytics/index"}, args...)...)
	require.NoError(t, err)
	assert.Regexp(t, `^exported 5 executions to s3://`+bucket+`/analytics/index/agentwatch-executions-\d{8}T\d{6}Z\.ndjson\n$`, out)
	key := strings.TrimSpace(strings.TrimPrefix(out[strings.Index(out, "s3://"):], "s3://"+bucket+"/"))

	obj, err := client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer obj.Body.Close()
	assert.Equal(t, listed(t, args, "--from", "2024-11-01"), ndjson(t, obj.Body))
	t.Cleanup(func() {
		_, _ = client.DeleteObject(t.Context(), &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		_, _ = client.DeleteBucket(t.Context(), &awss3.DeleteBucketInput{Bucket: aws.String(bucket)})
	})

	t.Run("an exact key", func(t *testing.T) {
		loc, err := s3.ExportLocation("s3://b/daily/2024-11-05.ndjson", "agentwatch-executions-20241105T010203Z.ndjson")
		require.NoError(t, err)
		assert.Equal(t, "daily/2024-11-05.ndjson", loc.Key)
		loc, err = s3.ExportLocation("s3://b", "agentwatch-executions-20241105T010203Z.ndjson")
		require.NoError(t, err)
		assert.Equal(t, "agentwatch-executions-20241105T010203Z.ndjson", loc.Key)
	})
	t.Run("a missing bucket", func(t *testing.T) {
		_, err := runCLI(t.Context(), append([]string{"export", "--since", "2024-11-01", "--out", "s3://" + bucket + "-none/x"}, args...)...)
		require.ErrorContains(t, err, "NoSuchBucket")
	})
}
