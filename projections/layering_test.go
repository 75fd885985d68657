package projections_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestLayering: domain/ imports only the standard library; projections/ only domain/
// and the quantile sketch library (with what it needs); neither imports the AWS SDK,
// Watermill, fx or any adapter.
func TestLayering(t *testing.T) {
	for pkgs, allowed := range map[string][]string{
		"../domain/...": nil,
		"./...":         {"github.com/agentwatch/agentwatch/domain", "github.com/agentwatch/agentwatch/projections", "github.com/DataDog/sketches-go/", "google.golang.org/protobuf/"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkgs).Output()
		require.NoError(t, err, pkgs)
		for _, dep := range strings.Fields(string(out)) {
			first := strings.SplitN(dep, "/", 2)[0]
			if !strings.Contains(first, ".") {
				continue // the standard library
			}
			if strings.HasPrefix(dep, "github.com/agentwatch/agentwatch/domain") {
				continue
			}
			ok := false
			for _, a := range allowed {
				ok = ok || strings.HasPrefix(dep, a)
			}
			require.Truef(t, ok, "%s depends on %s", pkgs, dep)
		}
	}
}
