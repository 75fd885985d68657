package simulate

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/agentwatch/agentwatch/domain"
)

func TestAppendQuotedMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and backslash \`, "KeyError: 'session_id'", "line\nbreak\ttab\rcr",
		"\x00\x01\x1f\x7f", "caf\u00e9 \u2603 \U0001F600", "sep\u2028\u2029", "bad \xff\xfe utf8", "<html>&",
		`botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "https://x"`,
	} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(s); err != nil {
			t.Fatal(err)
		}
		if got := appendQuoted(nil, s); string(got) != string(bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("appendQuoted(%q) = %s, want %s", s, got, want.Bytes())
		}
	}
}

func TestAppendTimeMatchesTimeFormat(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	lo := time.Date(1971, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	hi := time.Date(9000, 12, 31, 23, 59, 59, 999e6, time.UTC).UnixMilli()
	cases := []int64{lo, hi, time.Date(2024, 2, 29, 23, 59, 59, 999e6, time.UTC).UnixMilli(),
		time.Date(2000, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli()}
	for range 100_000 {
		cases = append(cases, lo+rng.Int64N(hi-lo))
	}
	for _, ms := range cases {
		tm := time.UnixMilli(ms).UTC()
		if got, want := string(appendTimeMs(nil, ms)), domain.FormatTime(tm); got != want {
			t.Fatalf("appendTimeMs(%d) = %s, want %s", ms, got, want)
		}
		if got, want := string(appendTimeSec(nil, ms)), tm.Format("2006-01-02T15:04:05Z"); got != want {
			t.Fatalf("appendTimeSec(%d) = %s, want %s", ms, got, want)
		}
	}
}

func TestAppendUUID(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	seen := map[string]bool{}
	for range 10_000 {
		u := string(appendUUID(nil, rng.Uint64(), rng.Uint64()))
		if !uuidRE.MatchString(u) || seen[u] {
			t.Fatalf("uuid %s", u)
		}
		seen[u] = true
	}
}

func TestWriteNDJSON(t *testing.T) {
	objs := []Object{{Body: []byte(`{"a":1}`)}, {Body: []byte(`{"b":2}`)}}
	var buf bytes.Buffer
	if err := WriteNDJSON(&buf, objs); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "{\"a\":1}\n{\"b\":2}\n" {
		t.Errorf("WriteNDJSON wrote %q", got)
	}
	if err := WriteNDJSON(failingWriter{}, objs); err == nil {
		t.Error("WriteNDJSON ignores a write error")
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, bytes.ErrTooLarge }
