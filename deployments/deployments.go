// Package deployments holds what runs agentwatch on AWS: the container build (Dockerfile,
// and build.sh, which runs the Dockerfile's build command where there is no Docker
// engine) and the CloudFormation template. The template is embedded as Template so that
// its tests check the very bytes an operator deploys: cfn-lint, a deploy on moto's
// CloudFormation carrying an event end to end, and a comparison with what the code
// creates, reads and calls (TestTemplateMatchesCode).
package deployments

import _ "embed"

// Template is deployments/cloudformation.yaml.
//
//go:embed cloudformation.yaml
var Template []byte
