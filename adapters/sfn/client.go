package sfn

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
)

// NewClient returns a Step Functions client from the SDK's standard configuration
// (AWS_REGION, credentials chain, AWS_ENDPOINT_URL_SFN for a local server).
func NewClient(ctx context.Context, optFns ...func(*sfn.Options)) (*sfn.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config for Step Functions: %w", err)
	}
	return sfn.NewFromConfig(cfg, optFns...), nil
}
