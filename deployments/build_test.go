package deployments_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dockerfile is what the checks read from deployments/Dockerfile.
type dockerfile struct {
	// BuildCommand is the RUN line with `go build` (of the last stage that has one).
	BuildCommand string
	// FinalBase is the FROM image of the last stage.
	FinalBase string
	// User is the last stage's USER.
	User string
	// Entrypoint and Cmd are the last stage's, in exec form.
	Entrypoint, Cmd []string
	// Copies are the last stage's COPY instructions.
	Copies []string
}

func parseDockerfile(path string) (dockerfile, error) {
	f, err := os.Open(path)
	if err != nil {
		return dockerfile{}, fmt.Errorf("open Dockerfile: %w", err)
	}
	defer f.Close()
	var d dockerfile
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		instr, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			base, _, _ := strings.Cut(rest, " ")
			d.FinalBase, d.User, d.Entrypoint, d.Cmd, d.Copies = base, "", nil, nil, nil
		case "RUN":
			if strings.Contains(rest, "go build") {
				d.BuildCommand = rest
			}
		case "USER":
			d.User = rest
		case "COPY":
			d.Copies = append(d.Copies, rest)
		case "ENTRYPOINT", "CMD":
			var exec []string
			if err := json.Unmarshal([]byte(rest), &exec); err != nil {
				return d, fmt.Errorf("%s must be in exec form (a JSON array): %w", instr, err)
			}
			if strings.ToUpper(instr) == "CMD" {
				d.Cmd = exec
			} else {
				d.Entrypoint = exec
			}
		}
	}
	if err := sc.Err(); err != nil {
		return d, fmt.Errorf("read Dockerfile: %w", err)
	}
	return d, nil
}

// outputFlag is the -o argument of a go build command line.
var outputFlag = regexp.MustCompile(`-o\s+("[^"]*"|\S+)`)

// buildScriptCommand is the go build line of build.sh.
func buildScriptCommand(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read build.sh: %w", err)
	}
	var cmd string
	for _, line := range strings.Split(string(b), "\n") {
		if l := strings.TrimSpace(line); !strings.HasPrefix(l, "#") && strings.Contains(l, "go build") {
			cmd = l
		}
	}
	if cmd == "" {
		return "", fmt.Errorf("build.sh has no go build line")
	}
	return cmd, nil
}

// TestBuildScriptIsTheDockerfileBuild checks that build.sh runs the Dockerfile's build
// command (the output path aside), and that the image is what ECS needs: a static
// binary from the builder copied into a distroless (or scratch) image, a non-root user,
// the binary as entrypoint and the worker as default command.
func TestBuildScriptIsTheDockerfileBuild(t *testing.T) {
	d, err := parseDockerfile("Dockerfile")
	require.NoError(t, err)
	script, err := buildScriptCommand("build.sh")
	require.NoError(t, err)

	require.NotEmpty(t, d.BuildCommand)
	dockerOut := outputFlag.FindStringSubmatch(d.BuildCommand)
	require.NotNil(t, dockerOut, "the Dockerfile's go build names its output")
	assert.Equal(t, outputFlag.ReplaceAllString(d.BuildCommand, "-o OUT"), outputFlag.ReplaceAllString(script, "-o OUT"),
		"build.sh must run the Dockerfile's build command")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "./cmd/agentwatch"} {
		assert.Contains(t, d.BuildCommand, want)
	}
	sh, err := os.ReadFile("build.sh")
	require.NoError(t, err)
	assert.Contains(t, string(sh), `out="${1:-`+dockerOut[1]+`}"`, "build.sh's default output is the Dockerfile's")

	assert.Regexp(t, `^(gcr\.io/distroless/static[^ ]*|scratch)$`, d.FinalBase)
	assert.NotEmpty(t, d.User)
	assert.NotContains(t, []string{"root", "0", "0:0", "root:root"}, d.User)
	assert.Contains(t, d.Copies, "--from=build "+dockerOut[1]+" "+dockerOut[1])
	assert.Equal(t, []string{dockerOut[1]}, d.Entrypoint)
	assert.Equal(t, []string{"run", "--backend", "aws", "--http", "0.0.0.0:8080"}, d.Cmd)
}

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
	binTook time.Duration
)

// TestMain removes the binary that build.sh built for the tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// agentwatchBinary builds the binary with build.sh — the Dockerfile's build command —
// once per test binary, and returns its path.
func agentwatchBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		start := time.Now()
		if binDir, binErr = os.MkdirTemp("", "agentwatch-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "agentwatch")
		cmd := exec.Command("./build.sh", binPath)
		out, err := cmd.CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("build.sh: %w\n%s", err, out)
		}
		binTook = time.Since(start)
	})
	require.NoError(t, binErr)
	return binPath
}

// TestBinaryIsStaticAndStripped builds with build.sh and checks the result: no dynamic
// loader or shared libraries (it runs on distroless/static or scratch), no symbol
// table (-s), no build-machine paths (-trimpath), and it runs.
func TestBinaryIsStaticAndStripped(t *testing.T) {
	bin := agentwatchBinary(t)
	t.Logf("build.sh took %s", binTook.Round(time.Millisecond))
	f, err := elf.Open(bin)
	require.NoError(t, err)
	defer f.Close()
	for _, p := range f.Progs {
		assert.NotEqual(t, elf.PT_INTERP, p.Type, "a static binary has no program interpreter")
	}
	libs, err := f.ImportedLibraries()
	require.NoError(t, err)
	assert.Empty(t, libs)
	assert.Nil(t, f.Section(".symtab"), "stripped (-s)")
	raw, err := os.ReadFile(bin)
	require.NoError(t, err)
	root, err := filepath.Abs(repoRoot)
	require.NoError(t, err)
	assert.False(t, bytes.Contains(raw, []byte(root+"/")), "-trimpath: no path of the build machine in the binary")
	out, err := exec.Command(bin, "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestContainerCommandsParse runs the binary with every command line the image and the
// stack give it, plus --help: cobra rejects an unknown subcommand or flag before it
// prints help, so this proves the Dockerfile's CMD, each task definition's Command and
// the worker's health check name a subcommand and flags that exist.
func TestContainerCommandsParse(t *testing.T) {
	bin := agentwatchBinary(t)
	d, err := parseDockerfile("Dockerfile")
	require.NoError(t, err)
	lines := map[string][]string{"Dockerfile CMD": d.Cmd}
	s := newStackShape(loadTemplate(t), requiredParams())
	require.Empty(t, s.problems)
	tds, problems := s.taskDefinitions()
	require.Empty(t, problems)
	for _, td := range tds {
		lines[td.name+" Command"] = td.command
		if hc := stringsOf(asMap(td.container["HealthCheck"])["Command"]); len(hc) > 2 {
			lines[td.name+" HealthCheck"] = hc[2:]
		}
	}
	for what, args := range lines {
		out, err := exec.Command(bin, append(append([]string{}, args...), "--help")...).CombinedOutput()
		assert.NoError(t, err, "%s: agentwatch %s: %s", what, strings.Join(args, " "), out)
	}
}
