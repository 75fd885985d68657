package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The tests of this file run the real binary, as a user does: flags, exit codes,
// stdout and stderr.

var (
	binaryOnce sync.Once
	binaryPath string
	binaryErr  error
	binaryDir  string
)

// agentwatchBinary builds the binary once per test process.
func agentwatchBinary(t *testing.T) string {
	t.Helper()
	binaryOnce.Do(func() {
		binaryDir, binaryErr = os.MkdirTemp("", "agentwatch-cli-test-")
		if binaryErr != nil {
			return
		}
		binaryPath = filepath.Join(binaryDir, "agentwatch")
		out, err := exec.Command("go", "build", "-o", binaryPath, ".").CombinedOutput()
		if err != nil {
			binaryErr = errors.New("go build: " + err.Error() + "\n" + string(out))
		}
	})
	require.NoError(t, binaryErr)
	return binaryPath
}

// TestMain removes the binary the CLI tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binaryDir != "" {
		_ = os.RemoveAll(binaryDir)
	}
	os.Exit(code)
}

// cliRun is one run of the binary.
type cliRun struct {
	stdout, stderr string
	code           int
}

// runBinary runs the binary with args and stdin, with no AGENTWATCH_* variable of the
// test's own environment, in UTC, plus env.
func runBinary(t *testing.T, stdin string, env []string, args ...string) cliRun {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), agentwatchBinary(t), args...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AGENTWATCH_") && !strings.HasPrefix(kv, "NO_COLOR=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// Tables show local times: UTC unless a test says otherwise.
	cmd.Env = append(cmd.Env, "TZ=UTC")
	cmd.Env = append(cmd.Env, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	run := cliRun{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		run.code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return run
}
