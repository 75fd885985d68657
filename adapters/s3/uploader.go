package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/agentwatch/agentwatch/domain"
)

// PutObjectAPI is the part of the S3 API that Uploader uses; *s3.Client implements it.
type PutObjectAPI interface {
	PutObject(ctx context.Context, in *s3.PutObjectInput, optFns ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// Location is an object's place in S3.
type Location struct {
	Bucket string
	Key    string
}

// String is the location as an s3:// URL.
func (l Location) String() string { return "s3://" + l.Bucket + "/" + l.Key }

// ParseURL reads an s3://bucket[/prefix] URL into its bucket and key prefix (without
// leading slash; "" for the bucket's root).
func ParseURL(raw string) (bucket, prefix string, err error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("%w: %q is not an s3:// URL: %w", domain.ErrInvalid, raw, err)
	}
	if u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("%w: %q is not an s3://bucket/prefix URL", domain.ErrInvalid, raw)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}

// Uploader puts objects in S3. It is safe for concurrent use.
type Uploader struct {
	api PutObjectAPI
}

// NewUploader returns an uploader over api.
func NewUploader(api PutObjectAPI) (*Uploader, error) {
	if api == nil {
		return nil, errors.New("s3: uploader needs a client")
	}
	return &Uploader{api: api}, nil
}

// Upload puts body at loc in one PutObject (objects up to 5 GB). body is seekable so
// that the SDK can sign and checksum it, and retry the call. A bucket that does not
// exist is domain.ErrNotFound (wrapped).
func (u *Uploader) Upload(ctx context.Context, loc Location, body io.ReadSeeker, contentType string) error {
	_, err := u.api.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(loc.Bucket), Key: aws.String(loc.Key), Body: body, ContentType: aws.String(contentType),
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", loc, translate(err))
	}
	return nil
}

// translate maps a missing bucket to domain.ErrNotFound, keeping the original error.
func translate(err error) error {
	var nsb *types.NoSuchBucket
	var apiErr smithy.APIError
	if errors.As(err, &nsb) || (errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchBucket") {
		return fmt.Errorf("%w: %w", domain.ErrNotFound, err)
	}
	return err
}

// NewClient returns an S3 client from the SDK's standard configuration (AWS_REGION,
// credentials chain, AWS_ENDPOINT_URL_S3 for a local server). With a configured
// endpoint it addresses buckets in the path (http://host/bucket/key), which local
// servers need: their buckets have no DNS names.
func NewClient(ctx context.Context, optFns ...func(*s3.Options)) (*s3.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config for S3: %w", err)
	}
	opts := append([]func(*s3.Options){func(o *s3.Options) {
		if o.BaseEndpoint != nil {
			o.UsePathStyle = true
		}
	}}, optFns...)
	return s3.NewFromConfig(cfg, opts...), nil
}
