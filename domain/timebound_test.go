package domain_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/domain"
)

func TestParseTimeBound(t *testing.T) {
	now := time.Date(2024, 11, 4, 10, 30, 0, 0, time.UTC)
	tests := []struct {
		in    string
		upper bool
		want  time.Time
	}{
		{"", false, time.Time{}},
		{"now", false, now},
		{"NOW", true, now},
		{"today", false, time.Date(2024, 11, 4, 0, 0, 0, 0, time.UTC)},
		{"today", true, time.Date(2024, 11, 4, 23, 59, 59, 999e6, time.UTC)},
		{"yesterday", false, time.Date(2024, 11, 3, 0, 0, 0, 0, time.UTC)},
		{"yesterday", true, time.Date(2024, 11, 3, 23, 59, 59, 999e6, time.UTC)},
		{"2024-11-01", false, time.Date(2024, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"2024-11-01", true, time.Date(2024, 11, 1, 23, 59, 59, 999e6, time.UTC)},
		{"2024-11-04T10:30:01.234Z", false, time.Date(2024, 11, 4, 10, 30, 1, 234e6, time.UTC)},
		{"2024-11-04T11:30:00+01:00", true, now},
		{"2024-11-04T10:30:00", false, now},
		{"24h", false, now.Add(-24 * time.Hour)},
		{"90m", false, now.Add(-90 * time.Minute)},
		{"7d", false, now.AddDate(0, 0, -7)},
		{"1.5d", false, now.Add(-36 * time.Hour)},
		{"2w", false, now.AddDate(0, 0, -14)},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := domain.ParseTimeBound("from", tt.in, now, tt.upper)
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
		})
	}
	for _, bad := range []string{"tomorrow", "2024-13-01", "-1h", "-2d", "d", "1e400d", "NaNd", "11/04/2024"} {
		t.Run("bad "+bad, func(t *testing.T) {
			_, err := domain.ParseTimeBound("--from", bad, now, false)
			require.Error(t, err)
			var fe *domain.FieldError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, "--from", fe.Field)
			assert.ErrorIs(t, err, domain.ErrInvalid)
		})
	}
}
