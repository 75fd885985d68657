package dynamodbstreams

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	stypes "github.com/aws/aws-sdk-go-v2/service/dynamodbstreams/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

func TestConfigDefaults(t *testing.T) {
	var c Config
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.NotEmpty(t, c.WorkerID)
	assert.Equal(t, 10*time.Second, c.LeaseDuration)
	assert.Equal(t, c.LeaseDuration/3, c.RenewInterval)
	assert.Equal(t, 5*time.Second, c.ShardSyncInterval)
	assert.Equal(t, 250*time.Millisecond, c.PollInterval)
	assert.Equal(t, 1000, c.MaxRecords)
	assert.Equal(t, 500*time.Millisecond, c.NackBackoff)
	assert.Equal(t, 30*time.Second, c.MaxNackBackoff)
	assert.Equal(t, time.Minute, c.StallTimeout)
	assert.Equal(t, 2*time.Second, c.WatermarkMargin)
	assert.Equal(t, StartTrimHorizon, c.StartPosition)
	var other Config
	other.SetDefaults()
	assert.NotEqual(t, c.WorkerID, other.WorkerID, "worker ids are unique")
}

func TestConfigValidate(t *testing.T) {
	c := Config{WorkerID: "w", LeaseDuration: time.Second, RenewInterval: time.Second, ShardSyncInterval: 2 * time.Second,
		PollInterval: 100 * time.Millisecond, MaxPollInterval: 50 * time.Millisecond, MaxRecords: 1001,
		NackBackoff: -1, MaxNackBackoff: -2, CheckpointInterval: -1, DrainTimeout: -1, ErrorBackoff: -1, StartPosition: "AT_TIMESTAMP",
		StallTimeout: time.Millisecond, WatermarkMargin: -1}
	err := c.Validate()
	require.Error(t, err)
	for _, field := range []string{"RenewInterval", "ShardSyncInterval", "PollInterval", "MaxPollInterval", "MaxRecords",
		"NackBackoff", "MaxNackBackoff", "CheckpointInterval", "DrainTimeout", "ErrorBackoff", "StartPosition", "StallTimeout",
		"WatermarkMargin"} {
		assert.Contains(t, err.Error(), field)
	}
	assert.Len(t, strings.Split(err.Error(), "\n"), 13, "one line per field")
}

func TestDecodeJournalRecord(t *testing.T) {
	seq := "000000000000000000042"
	at := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	record := func(name stypes.OperationType, img map[string]stypes.AttributeValue) *stypes.Record {
		return &stypes.Record{EventID: aws.String("e1"), EventName: name,
			Dynamodb: &stypes.StreamRecord{SequenceNumber: &seq, ApproximateCreationDateTime: &at, NewImage: img}}
	}
	exec := map[string]stypes.AttributeValue{
		"PK":              &stypes.AttributeValueMemberS{Value: "SESSION#s1"},
		"SK":              &stypes.AttributeValueMemberS{Value: "EVENT#2024-11-04T10:30:00.000Z#sfn-1"},
		"Status":          &stypes.AttributeValueMemberS{Value: "EXECUTION_FAILED"},
		"Timestamp":       &stypes.AttributeValueMemberS{Value: "2024-11-04T10:30:00.000Z"},
		"ExecutionArn":    &stypes.AttributeValueMemberS{Value: "arn:aws:states:us-east-1:123456789012:execution:agent:e1"},
		"RedriveCount":    &stypes.AttributeValueMemberN{Value: "1"},
		"InputIncluded":   &stypes.AttributeValueMemberBOOL{Value: true},
		"ErrorMessage":    &stypes.AttributeValueMemberNULL{Value: true},
		"Extra":           &stypes.AttributeValueMemberM{Value: map[string]stypes.AttributeValue{"l": &stypes.AttributeValueMemberL{Value: []stypes.AttributeValue{&stypes.AttributeValueMemberNS{Value: []string{"1"}}}}}},
		"Blob":            &stypes.AttributeValueMemberB{Value: []byte{0xff, 0}},
		"Tags":            &stypes.AttributeValueMemberSS{Value: []string{"a"}},
		"Blobs":           &stypes.AttributeValueMemberBS{Value: [][]byte{{1}}},
		"StateMachineArn": &stypes.AttributeValueMemberS{Value: "arn:aws:states:us-east-1:123456789012:stateMachine:agent"},
	}

	t.Run("valid item", func(t *testing.T) {
		for _, name := range []stypes.OperationType{stypes.OperationTypeInsert, stypes.OperationTypeModify} {
			d := decodeJournalRecord(record(name, exec))
			require.NoError(t, d.invalid)
			require.Empty(t, d.skip)
			var item domain.JournalItem
			require.NoError(t, json.Unmarshal(d.item, &item))
			assert.Equal(t, "EXECUTION_FAILED", item.Status)
			require.NotNil(t, item.RedriveCount)
			assert.Equal(t, 1, *item.RedriveCount)
			assert.Equal(t, "SESSION#s1", item.PK)
			_, err := domain.DecodeJournalItemJSON(d.item)
			assert.NoError(t, err, "the projector accepts the page's item")
		}
	})
	t.Run("remove and keys-only records are skipped", func(t *testing.T) {
		assert.Equal(t, skipRemove, decodeJournalRecord(record(stypes.OperationTypeRemove, exec)).skip)
		assert.Equal(t, skipNoNewImage, decodeJournalRecord(record(stypes.OperationTypeInsert, nil)).skip)
	})
	t.Run("invalid item", func(t *testing.T) {
		bad := map[string]stypes.AttributeValue{"PK": &stypes.AttributeValueMemberS{Value: "USER#1"}, "SK": &stypes.AttributeValueMemberN{Value: "1"}}
		d := decodeJournalRecord(record(stypes.OperationTypeInsert, bad))
		require.ErrorIs(t, d.invalid, domain.ErrInvalid)
		assert.Contains(t, d.invalid.Error(), "PK")
		assert.JSONEq(t, `{"PK":{"S":"USER#1"},"SK":{"N":"1"}}`, d.rawImage)
	})
	t.Run("DynamoDB JSON of every type", func(t *testing.T) {
		raw, err := dynamoJSON(exec)
		require.NoError(t, err)
		s := string(raw)
		for _, want := range []string{`"Blob":{"B":"/wA="}`, `"Tags":{"SS":["a"]}`, `"Blobs":{"BS":["AQ=="]}`,
			`"Extra":{"M":{"l":{"L":[{"NS":["1"]}]}}}`, `"ErrorMessage":{"NULL":true}`, `"InputIncluded":{"BOOL":true}`} {
			assert.Contains(t, s, want)
		}
	})
}
