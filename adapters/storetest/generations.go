package storetest

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
	"github.com/agentwatch/agentwatch/projections/executionindex"
)

// TestGenerations: generations are created with the registered read models' tables and
// their signature, hold their own data, switch atomically, and are dropped but for the
// current one.
func TestGenerations(t *testing.T, newStores Factory) {
	s := newStores(t)
	ctx := t.Context()
	gen, sig, err := s.Generations.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 1, gen)
	assert.Equal(t, s.Registry.Signature(), sig)

	require.NoError(t, s.Generations.CreateGeneration(ctx, 2, "built-for-test"))
	require.NoError(t, s.Generations.CreateGeneration(ctx, 2, "ignored"), "creating an existing generation does nothing")
	g2 := s.Generations.ProjectionStoreOf(2)
	it := execItem("arn:aws:states:us-east-1:123456789012:execution:sm:gen2ex", "a", domain.ExecRunning, 0, t0)
	require.NoError(t, g2.Commit(ctx, app.Batch{Sessions: []app.SessionChange{{SessionWrite: app.SessionWrite{
		Session: sessionOf(t, "gen2-session", "initiated")}, Changes: projections.Changes{Puts: []projections.Put{putItem(it)}}}}}))
	_, err = s.Projection.GetDocument(ctx, executionindex.Table, it.ExecutionArn)
	assert.ErrorIs(t, err, domain.ErrNotFound, "generation 1 serves and does not have it")
	gens, err := s.Generations.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2}, gens)

	require.NoError(t, s.Generations.SwitchGeneration(ctx, 2))
	gen, sig, err = s.Generations.CurrentGeneration(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, gen)
	assert.Equal(t, "built-for-test", sig)
	assert.ErrorIs(t, s.Generations.DropGeneration(ctx, 2), domain.ErrConflict, "the current generation stays")
	require.NoError(t, s.Generations.DropGeneration(ctx, 1))
	require.NoError(t, s.Generations.DropGeneration(ctx, 7), "dropping what is not there does nothing")
	gens, err = s.Generations.Generations(ctx)
	require.NoError(t, err)
	assert.Equal(t, []int{2}, gens)
	assert.ErrorIs(t, s.Generations.SwitchGeneration(ctx, 5), domain.ErrNotFound)
}
