// Package s3 is agentwatch's adapter to Amazon S3: it uploads exports (`agentwatch
// export --out s3://bucket/prefix`, seed 000's "Export to S3 for analytics") with the
// SDK's PutObject.
//
// AWS permissions: s3:PutObject on the export prefix.
package s3
