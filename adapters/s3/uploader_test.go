package s3_test

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/s3"
	"github.com/agentwatch/agentwatch/adapters/sqs/mototest"
	"github.com/agentwatch/agentwatch/domain"
)

// bucket creates a bucket on moto, emptied and deleted when the test ends.
func bucket(t *testing.T, client *awss3.Client) string {
	t.Helper()
	name := strings.ToLower(strings.ReplaceAll(mototest.Name(t, "aw"), "_", "-"))
	if len(name) > 63 {
		name = name[len(name)-63:]
	}
	name = strings.Trim(name, "-")
	_, err := client.CreateBucket(t.Context(), &awss3.CreateBucketInput{Bucket: aws.String(name)})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx := context.Background()
		out, err := client.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String(name)})
		if err == nil {
			for _, o := range out.Contents {
				_, _ = client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(name), Key: o.Key})
			}
		}
		_, _ = client.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: aws.String(name)})
	})
	return name
}

func TestUploaderPutsObjectsOnMoto(t *testing.T) {
	client := awss3.NewFromConfig(mototest.AWSConfig(t), func(o *awss3.Options) {
		o.UsePathStyle, o.DisableLogOutputChecksumValidationSkipped = true, true
	})
	b := bucket(t, client)
	up, err := s3.NewUploader(client)
	require.NoError(t, err)

	body := "{\"a\":1}\n{\"a\":2}\n"
	loc := s3.Location{Bucket: b, Key: "exports/executions.ndjson"}
	require.NoError(t, up.Upload(t.Context(), loc, strings.NewReader(body), "application/x-ndjson"))
	out, err := client.GetObject(t.Context(), &awss3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(loc.Key)})
	require.NoError(t, err)
	defer out.Body.Close()
	got, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	assert.Equal(t, body, string(got))
	assert.Equal(t, "application/x-ndjson", aws.ToString(out.ContentType))

	err = up.Upload(t.Context(), s3.Location{Bucket: b + "-missing", Key: "k"}, strings.NewReader("x"), "text/plain")
	require.ErrorIs(t, err, domain.ErrNotFound)
	assert.ErrorContains(t, err, "s3://"+b+"-missing/k")
}

func TestParseURL(t *testing.T) {
	for _, tt := range []struct{ in, bucket, prefix string }{
		{"s3://my-bucket", "my-bucket", ""},
		{"s3://my-bucket/", "my-bucket", ""},
		{"s3://my-bucket/exports/agentwatch", "my-bucket", "exports/agentwatch"},
		{"s3://my-bucket/exports/", "my-bucket", "exports/"},
	} {
		b, p, err := s3.ParseURL(tt.in)
		require.NoError(t, err, tt.in)
		assert.Equal(t, tt.bucket, b, tt.in)
		assert.Equal(t, tt.prefix, p, tt.in)
	}
	for _, bad := range []string{"s3:///no-bucket", "https://my-bucket/x", "s3://b/x?versionId=1", "::"} {
		_, _, err := s3.ParseURL(bad)
		require.ErrorIs(t, err, domain.ErrInvalid, bad)
	}
}
