package dynamodb_test

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/stretchr/testify/require"

	awdynamodb "github.com/agentwatch/agentwatch/adapters/dynamodb"
	"github.com/agentwatch/agentwatch/adapters/dynamodb/dynamotest"
	"github.com/agentwatch/agentwatch/adapters/storetest"
)

// storesOn builds every store over the tables of cfg, the read models of generation gen
// (0: the current one).
func storesOn(t testing.TB, c *dynamodb.Client, cfg awdynamodb.Config, gen int) storetest.Stores {
	t.Helper()
	journal, err := awdynamodb.NewJournalStore(c, cfg, nil)
	require.NoError(t, err)
	reg := dynamotest.Registry(t)
	rm, err := awdynamodb.NewReadModelStore(c, cfg, reg, gen, nil)
	require.NoError(t, err)
	gens, err := awdynamodb.NewReadModelStore(c, cfg, reg, 0, nil)
	require.NoError(t, err)
	alerts, err := awdynamodb.NewAlertStore(c, cfg, nil)
	require.NoError(t, err)
	cps, err := awdynamodb.NewCheckpointStore(c, cfg)
	require.NoError(t, err)
	q, err := awdynamodb.NewQuarantineStore(c, cfg)
	require.NoError(t, err)
	return storetest.Stores{Registry: reg, Journal: journal, Projection: rm, Generations: gens, Alerts: alerts, Checkpoints: cps, Quarantine: q}
}

// newStores gives each case fresh, migrated tables under a prefix of its own. The
// journal is in a table without a stream (see dynamotest.MigratedWithoutStream);
// TestSeedItemAsAgentsWriteIt and TestMigrate use the migrated one with its stream.
func newStores(t *testing.T) storetest.Stores {
	c := dynamotest.NewClient(t)
	return storesOn(t, c, dynamotest.MigratedWithoutStream(t, c), 1)
}

func TestStoreContract(t *testing.T) {
	storetest.Run(t, newStores)
}

// The projection cases again through a store that follows the current generation.
func TestStoreContractCurrentGeneration(t *testing.T) {
	storetest.TestProjection(t, func(t *testing.T) storetest.Stores {
		c := dynamotest.NewClient(t)
		return storesOn(t, c, dynamotest.MigratedWithoutStream(t, c), 0)
	})
}
