package domain_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

// TestFuzzSmoke runs every fuzz target of the package on random mutations of the test
// data for a moment each: a short fuzz run in every `go test`, beside the seed corpora
// (testdata/fuzz) that `go test` replays anyway. The long run is scripts/fuzz.
func TestFuzzSmoke(t *testing.T) {
	var seeds [][]byte
	for _, pattern := range []string{"eventbridge/*.json", "dynamodb/*.json", "seed002/*"} {
		names, _ := filepath.Glob(filepath.Join("testdata", filepath.FromSlash(pattern)))
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil {
				seeds = append(seeds, b)
			}
		}
	}
	if len(seeds) == 0 {
		t.Fatal("no test data to mutate")
	}
	targets := []struct {
		name string
		fn   func(t *testing.T, data []byte)
	}{
		{"DecodeJournalItemJSON", fuzzDecodeJournalItemJSON},
		{"DecodeJournalItemDynamoJSON", fuzzDecodeJournalItemDynamoJSON},
		{"DecodeStatusChange", fuzzDecodeStatusChange},
		{"DecodeInput", fuzzDecodeInput},
		{"SplitInput", fuzzSplitInput},
		{"SplitNDJSON", func(t *testing.T, data []byte) {
			objs, err := domain.SplitNDJSON(data, 7)
			checkSplitInvariants(t, data, 7, objs, err)
		}},
		{"ParseTime", func(t *testing.T, data []byte) { fuzzParseTime(t, string(data[:min(len(data), 40)])) }},
		{"JournalItemEvent", func(t *testing.T, data []byte) {
			parts := strings.SplitN(string(data), "\n", 8)
			for len(parts) < 8 {
				parts = append(parts, "")
			}
			fuzzJournalItemEvent(t, parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6], len(parts[7])-3, len(data)%2 == 0)
		}},
		{"Truncate", func(t *testing.T, data []byte) { fuzzTruncate(t, string(data), len(data)/3) }},
	}
	const budget = 250 * time.Millisecond
	for i, tt := range targets {
		t.Run(tt.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			deadline := time.Now().Add(budget)
			n := 0
			for ; time.Now().Before(deadline); n++ {
				tt.fn(t, mutate(rng, seeds[rng.IntN(len(seeds))]))
			}
			t.Logf("%d inputs", n)
		})
	}
}

// interesting are byte strings that JSON decoders get wrong most easily.
var interesting = [][]byte{
	[]byte(`"`), []byte(`\`), []byte(`{`), []byte(`}`), []byte(`[`), []byte(`]`), []byte(`,`), []byte(`:`),
	[]byte(`\ud800`), []byte(`\udc00`), []byte(`\ud83d\ude00`), []byte("\xff"), []byte("\xc3"), []byte("é"),
	[]byte(`null`), []byte(`true`), []byte(`1e999`), []byte(`-0`), []byte(`1.5`), []byte(`"S"`), []byte(`{"S":"x"}`),
	[]byte("\n"), []byte("\r\n"), []byte("\xef\xbb\xbf"), []byte(`"PK"`), []byte(`"detail"`), []byte(`"Message"`),
	[]byte(`"EXECUTION_RUNNING"`), []byte(`"SESSION#`), []byte(`"EVENT#2024-11-04T10:30:00.000Z"`),
}

// mutate returns a copy of seed with a few random edits: flipped bytes, inserted
// interesting tokens, deleted and duplicated ranges.
func mutate(rng *rand.Rand, seed []byte) []byte {
	b := append([]byte(nil), seed...)
	for range 1 + rng.IntN(4) {
		if len(b) == 0 {
			b = append(b, interesting[rng.IntN(len(interesting))]...)
			continue
		}
		at := rng.IntN(len(b))
		switch rng.IntN(5) {
		case 0:
			b[at] ^= byte(1 << rng.IntN(8))
		case 1:
			tok := interesting[rng.IntN(len(interesting))]
			b = append(b[:at], append(append([]byte(nil), tok...), b[at:]...)...)
		case 2:
			end := min(len(b), at+1+rng.IntN(16))
			b = append(b[:at], b[end:]...)
		case 3:
			end := min(len(b), at+1+rng.IntN(64))
			b = append(b[:end], append(append([]byte(nil), b[at:end]...), b[end:]...)...)
		case 4:
			b[at] = byte(rng.IntN(256))
		}
	}
	return b
}
