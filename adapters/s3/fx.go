package s3

import (
	"context"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/fx"

	"github.com/agentwatch/agentwatch/app"
)

// Module provides the S3 client (the SDK's standard configuration) and the export
// uploader as the app.ExportUploader.
var Module = fx.Module("s3",
	fx.Provide(newFxClient, newFxExportUploader),
)

// newFxClient is NewClient for fx: loading the configuration reads the environment and
// files, never the network.
func newFxClient() (*s3.Client, error) { return NewClient(context.Background()) }

func newFxExportUploader(client *s3.Client) (app.ExportUploader, error) {
	return NewExportUploader(client)
}
