package deployments_test

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDocsNameWhatTheCodeHas keeps the docs honest about what a type-checked walk of
// the code finds: docs/configuration.md (generated from the flags' usage) names every
// AGENTWATCH_* variable the code reads — a flag whose usage forgets its variable
// leaves it out — and docs/operations.md names every metric the code defines.
func TestDocsNameWhatTheCodeHas(t *testing.T) {
	facts := loadCodeFacts(t)
	conf, err := os.ReadFile(filepath.Join(repoRoot, "docs", "configuration.md"))
	require.NoError(t, err)
	for _, v := range slices.Sorted(maps.Keys(facts.EnvVars)) {
		assert.True(t, strings.Contains(string(conf), "`"+v+"`"), "docs/configuration.md does not name %s, which the code reads at %s", v, facts.EnvVars[v])
	}
	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	require.NoError(t, err)
	require.NotEmpty(t, facts.Metrics)
	for _, m := range slices.Sorted(maps.Keys(facts.Metrics)) {
		assert.True(t, strings.Contains(string(ops), "`"+m+"`"), "docs/operations.md does not explain %s (defined at %s)", m, facts.Metrics[m])
	}
}
