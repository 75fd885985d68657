package s3

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/agentwatch/agentwatch/app"
)

// ExportUploader is the app.ExportUploader of S3: it puts an export at an
// s3://bucket/prefix URL.
type ExportUploader struct {
	up *Uploader
}

var _ app.ExportUploader = (*ExportUploader)(nil)

// NewExportUploader returns the export uploader over api.
func NewExportUploader(api PutObjectAPI) (*ExportUploader, error) {
	up, err := NewUploader(api)
	if err != nil {
		return nil, err
	}
	return &ExportUploader{up: up}, nil
}

// Upload puts body at target, an s3://bucket/prefix URL: exactly at the key given when
// it names a file (.ndjson, .jsonl, .json), else at prefix/name. It returns the
// object's s3:// URL.
func (u *ExportUploader) Upload(ctx context.Context, target, name string, body io.ReadSeeker) (string, error) {
	loc, err := ExportLocation(target, name)
	if err != nil {
		return "", err
	}
	if err := u.up.Upload(ctx, loc, body, "application/x-ndjson"); err != nil {
		return "", err
	}
	return loc.String(), nil
}

// ExportLocation is where an export to target (s3://bucket/prefix) goes: the key given
// if it names a file (.ndjson, .jsonl, .json), else prefix/name.
func ExportLocation(target, name string) (Location, error) {
	bucket, prefix, err := ParseURL(target)
	if err != nil {
		return Location{}, fmt.Errorf("--out: %w", err)
	}
	switch path.Ext(prefix) {
	case ".ndjson", ".jsonl", ".json":
		return Location{Bucket: bucket, Key: prefix}, nil
	}
	if prefix == "" {
		return Location{Bucket: bucket, Key: name}, nil
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return Location{Bucket: bucket, Key: prefix + name}, nil
}
