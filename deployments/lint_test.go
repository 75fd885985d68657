package deployments_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/deployments"
)

// cfnLint finds cfn-lint: the script beside python3's real executable (where the
// machine image's pip installed it, as ../shared/LOCAL-AWS.md finds moto_server), or one
// on PATH. Without it the test fails under CI=true and is skipped otherwise.
func cfnLint(t *testing.T) string {
	t.Helper()
	if out, err := exec.Command("python3", "-c", "import os,sys;print(os.path.dirname(os.path.realpath(sys.executable)))").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "cfn-lint")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("cfn-lint"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("cfn-lint is required under CI=true: it is preinstalled beside python3 on the machine image")
	}
	t.Skip("no cfn-lint (beside python3, or on PATH)")
	return ""
}

// TestCfnLint runs cfn-lint on the template: no errors and no warnings. In the same run
// it lints a copy with a planted error, which must be reported, so that a cfn-lint that
// checks nothing (or output this test misreads) cannot pass.
func TestCfnLint(t *testing.T) {
	lint := cfnLint(t)
	broken := filepath.Join(t.TempDir(), "broken.yaml")
	planted := bytes.Replace(deployments.Template, []byte("      VisibilityTimeout: 60\n"), []byte("      VisibilityTimeout: 60\n      VisibilityTimout: 60\n"), 1)
	require.NoError(t, os.WriteFile(broken, planted, 0o600))

	cmd := exec.Command(lint, "--format", "parseable", "cloudformation.yaml", broken)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run cfn-lint: %v", err)
	}
	var own, plantedFindings []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, broken):
			plantedFindings = append(plantedFindings, line)
		default:
			own = append(own, line)
		}
	}
	assert.Empty(t, own, "cfn-lint on deployments/cloudformation.yaml")
	require.NotEmpty(t, plantedFindings, "cfn-lint must report the planted error")
	assert.Contains(t, strings.Join(plantedFindings, "\n"), "VisibilityTimout")
	t.Logf("cfn-lint: %d findings on the template, %d on the planted copy", len(own), len(plantedFindings))
}
