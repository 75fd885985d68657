package httpapi_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/projections/stuck"
)

const testToken = "0123456789abcdef0123456789abcdef"

// item is one seed-002 journal item as JSON.
func item(session string) string {
	return mustJSON(agentEvent(session, "SESSION_INITIATED", day.Add(9*time.Hour), ""))
}

// login posts the token to /auth/login and returns the answer.
func (s *stack) login(token string, header ...string) answer {
	s.t.Helper()
	return s.do(http.MethodPost, "/auth/login", "application/json", []byte(mustJSON(map[string]string{"token": token})), header...)
}

// authCookie returns the page's cookie from a login answer.
func authCookie(t *testing.T, a answer) *http.Cookie {
	t.Helper()
	for _, c := range (&http.Response{Header: a.header}).Cookies() {
		if c.Name == httpapi.AuthCookie {
			return c
		}
	}
	t.Fatalf("no %s cookie in %v", httpapi.AuthCookie, a.header)
	return nil
}

func TestBearerTokenAuthentication(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{AuthToken: testToken}})
	_, err := s.ingester.IngestBody(t.Context(), "http", []byte(item("authed")))
	require.NoError(t, err)
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "authed", Kind: stuck.KindStuck, AgentName: "a", RaisedAt: day}))

	login := s.login(testToken)
	require.Equal(t, http.StatusNoContent, login.status, "body: %s", login.body)
	cookie := authCookie(t, login)
	assert.True(t, cookie.HttpOnly, "HttpOnly")
	assert.Equal(t, http.SameSiteStrictMode, cookie.SameSite)
	assert.Equal(t, "/", cookie.Path)
	assert.NotContains(t, cookie.Value, testToken, "the cookie is derived from the token, not the token")

	const (
		none = iota
		good
		wrong
		goodCookie
		wrongCookie
		lowercase
	)
	creds := map[int][]string{
		none:        nil,
		good:        {"Authorization", "Bearer " + testToken},
		wrong:       {"Authorization", "Bearer " + strings.Repeat("x", len(testToken))},
		goodCookie:  {"Cookie", httpapi.AuthCookie + "=" + cookie.Value},
		wrongCookie: {"Cookie", httpapi.AuthCookie + "=" + strings.Repeat("A", len(cookie.Value))},
		lowercase:   {"Authorization", "bearer " + testToken},
	}
	v1 := []struct{ method, path, contentType, body string }{
		{"GET", "/v1/executions", "", ""},
		{"GET", "/v1/executions/arn:aws:states:us-east-1:1:execution:a:b", "", ""},
		{"GET", "/v1/sessions/authed", "", ""},
		{"GET", "/v1/sessions/authed/events", "", ""},
		{"GET", "/v1/agents/a/stats", "", ""},
		{"GET", "/v1/stats", "", ""},
		{"GET", "/v1/alerts", "", ""},
		{"GET", "/v1/stuck", "", ""},
		{"GET", "/v1/quarantine", "", ""},
		{"GET", "/v1/nope", "", ""},
		{"POST", "/v1/events", "application/json", item("posted")},
		{"POST", "/v1/alerts/authed/stuck/ack", "", ""},
	}
	for _, e := range v1 {
		t.Run(e.method+" "+e.path, func(t *testing.T) {
			for _, c := range []int{none, wrong, wrongCookie} {
				a := s.do(e.method, e.path, e.contentType, []byte(e.body), creds[c]...)
				require.Equal(t, http.StatusUnauthorized, a.status, "credentials %v: %s", creds[c], a.body)
				assert.Equal(t, `Bearer realm="agentwatch"`, a.header.Get("WWW-Authenticate"))
				assert.Contains(t, a.json(t)["error"], "authentication required")
			}
			for _, c := range []int{good, goodCookie, lowercase} {
				a := s.do(e.method, e.path, e.contentType, []byte(e.body), creds[c]...)
				assert.NotEqual(t, http.StatusUnauthorized, a.status, "credentials %v: %s", creds[c], a.body)
				assert.NotEqual(t, http.StatusForbidden, a.status, "credentials %v: %s", creds[c], a.body)
			}
		})
	}

	t.Run("health, readiness, metrics and the page's files stay open", func(t *testing.T) {
		for _, p := range []string{"/healthz", "/readyz", "/metrics", "/assets/app.js", "/login", "/login.js"} {
			assert.Equal(t, http.StatusOK, s.get(p).status, p)
		}
	})
	t.Run("the page sends a browser without the cookie to the login prompt", func(t *testing.T) {
		s.http.Client().CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		defer func() { s.http.Client().CheckRedirect = nil }()
		a := s.get("/?agent=a&range=24h")
		require.Equal(t, http.StatusSeeOther, a.status)
		assert.Equal(t, "/login?next=%2F%3Fagent%3Da%26range%3D24h", a.header.Get("Location"))
		assert.Equal(t, http.StatusOK, s.do("GET", "/", "", nil, creds[goodCookie]...).status)
	})
	t.Run("a wrong token does not log in", func(t *testing.T) {
		a := s.login("not the token at all, but long")
		assert.Equal(t, http.StatusUnauthorized, a.status)
		assert.Empty(t, a.header.Values("Set-Cookie"))
	})
	t.Run("logout removes the cookie", func(t *testing.T) {
		a := s.do("POST", "/auth/logout", "", nil)
		require.Equal(t, http.StatusNoContent, a.status)
		c := authCookie(t, a)
		assert.Empty(t, c.Value)
		assert.Negative(t, c.MaxAge)
	})
	t.Run("refusals are counted", func(t *testing.T) {
		m := string(s.get("/metrics").body)
		assert.Contains(t, m, `agentwatch_http_requests_refused_total{reason="unauthorized"}`)
	})
}

func TestAuthOpsEndpoints(t *testing.T) {
	s := newStack(t, stackOptions{config: httpapi.Config{AuthToken: testToken, AuthOps: true}})
	for _, p := range []string{"/healthz", "/readyz", "/metrics"} {
		assert.Equal(t, http.StatusUnauthorized, s.get(p).status, p)
		assert.Equal(t, http.StatusOK, s.do("GET", p, "", nil, "Authorization", "Bearer "+testToken).status, p)
	}
}

func TestAuthConfig(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  httpapi.Config
		want string
	}{
		{"short token", httpapi.Config{AuthToken: "short"}, "at least 16 bytes"},
		{"token with a space", httpapi.Config{AuthToken: "0123456789 abcdef"}, "visible ASCII"},
		{"ops without a token", httpapi.Config{AuthOps: true}, "requires an auth token"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SetDefaults()
			assert.ErrorContains(t, tt.cfg.Validate(), tt.want)
		})
	}
	t.Run("token file", func(t *testing.T) {
		dir := t.TempDir()
		good := filepath.Join(dir, "token")
		require.NoError(t, os.WriteFile(good, []byte("  "+testToken+"\n"), 0o600))
		tok, err := httpapi.ReadAuthToken(good)
		require.NoError(t, err)
		assert.Equal(t, testToken, tok)
		empty := filepath.Join(dir, "empty")
		require.NoError(t, os.WriteFile(empty, []byte("\n"), 0o600))
		_, err = httpapi.ReadAuthToken(empty)
		assert.ErrorContains(t, err, "at least 16 bytes")
		_, err = httpapi.ReadAuthToken(filepath.Join(dir, "missing"))
		assert.ErrorContains(t, err, "auth token file")
	})
}

// TestCrossOriginWritesAreRefused: a page of another origin wrote journal items and
// acknowledged alerts; state-changing requests that a browser marks as coming from
// another origin are refused, with or without a token.
func TestCrossOriginWritesAreRefused(t *testing.T) {
	s := newStack(t, stackOptions{})
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "victim", Kind: stuck.KindStuck, AgentName: "a", RaisedAt: day}))
	tests := []struct {
		name   string
		header []string
		status int
	}{
		{"another site", []string{"Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example"}, http.StatusForbidden},
		{"another origin of the same site", []string{"Sec-Fetch-Site", "same-site", "Origin", "http://127.0.0.1:1"}, http.StatusForbidden},
		{"an older browser: Origin only", []string{"Origin", "http://evil.example"}, http.StatusForbidden},
		{"an opaque origin", []string{"Origin", "null"}, http.StatusForbidden},
		{"the page itself", []string{"Sec-Fetch-Site", "same-origin"}, http.StatusOK},
		{"a person typing the URL", []string{"Sec-Fetch-Site", "none"}, http.StatusOK},
		{"a non-browser client", nil, http.StatusOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := s.do(http.MethodPost, "/v1/events", "application/json", []byte(item("xo-"+string(rune('a'+i)))), tt.header...)
			assert.Equal(t, tt.status, a.status, "body: %s", a.body)
			ack := s.do(http.MethodPost, "/v1/alerts/victim/stuck/ack", "application/json", []byte(`{"by":"evil.example"}`), tt.header...)
			if tt.status == http.StatusForbidden {
				assert.Equal(t, http.StatusForbidden, ack.status, "body: %s", ack.body)
				assert.Contains(t, a.json(t)["error"], "cross-origin request refused")
				assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/xo-"+string(rune('a'+i))).status)
			}
		})
	}
}

// TestBodiesMustBeJSON: every Content-Type used to be parsed as JSON, which let HTML
// forms (text/plain) post journal items.
func TestBodiesMustBeJSON(t *testing.T) {
	s := newStack(t, stackOptions{})
	require.NoError(t, s.alerts.InsertAlert(t.Context(), app.Alert{SessionID: "mt", Kind: stuck.KindStuck, AgentName: "a", RaisedAt: day}))
	tests := []struct {
		name, contentType string
		status            int
	}{
		{"text/plain", "text/plain", http.StatusUnsupportedMediaType},
		{"text/plain with a charset", "text/plain;charset=UTF-8", http.StatusUnsupportedMediaType},
		{"a form", "application/x-www-form-urlencoded", http.StatusUnsupportedMediaType},
		{"a multipart form", "multipart/form-data; boundary=x", http.StatusUnsupportedMediaType},
		{"none", "", http.StatusUnsupportedMediaType},
		{"malformed", "application/", http.StatusUnsupportedMediaType},
		{"JSON", "application/json", http.StatusOK},
		{"JSON with a charset", "application/json; charset=utf-8", http.StatusOK},
		{"a +json type", "application/vnd.agentwatch+json", http.StatusOK},
		{"NDJSON", "application/x-ndjson", http.StatusOK},
		{"JSON lines", "application/jsonl", http.StatusOK},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := "mt-" + string(rune('a'+i))
			a := s.do(http.MethodPost, "/v1/events", tt.contentType, []byte(item(id)))
			require.Equal(t, tt.status, a.status, "body: %s", a.body)
			if tt.status == http.StatusUnsupportedMediaType {
				assert.Contains(t, a.json(t)["error"], "application/json")
				assert.Equal(t, http.StatusNotFound, s.get("/v1/sessions/"+id).status, "nothing written")
				ack := s.do(http.MethodPost, "/v1/alerts/mt/stuck/ack", tt.contentType, []byte(`{"by":"x"}`))
				assert.Equal(t, http.StatusUnsupportedMediaType, ack.status, "body: %s", ack.body)
			}
		})
	}
	t.Run("an ack without a body needs no Content-Type", func(t *testing.T) {
		a := s.do(http.MethodPost, "/v1/alerts/mt/stuck/ack", "", nil)
		assert.Equal(t, http.StatusOK, a.status, "body: %s", a.body)
	})
}

// TestWarnsBeyondLoopbackWithoutToken: --http :PORT used to bind every interface
// without a word.
func TestWarnsBeyondLoopbackWithoutToken(t *testing.T) {
	s := newStack(t, stackOptions{})
	tests := []struct {
		name  string
		cfg   httpapi.Config
		warns bool
	}{
		{"every interface, no token", httpapi.Config{Addr: ":0"}, true},
		{"0.0.0.0, no token", httpapi.Config{Addr: "0.0.0.0:0"}, true},
		{"loopback, no token", httpapi.Config{Addr: "127.0.0.1:0"}, false},
		{"localhost, no token", httpapi.Config{Addr: "localhost:0"}, false},
		{"every interface with a token", httpapi.Config{Addr: ":0", AuthToken: testToken}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			srv, err := httpapi.New(tt.cfg, s.queries, nil, nil, nil, slog.New(slog.NewTextHandler(&logs, nil)))
			require.NoError(t, err)
			require.NoError(t, srv.Start(t.Context()))
			t.Cleanup(func() { _ = srv.Stop(t.Context()) })
			if tt.warns {
				assert.Contains(t, logs.String(), "level=WARN")
				assert.Contains(t, logs.String(), "without authentication")
				assert.Contains(t, logs.String(), "--auth-token-file")
			} else {
				assert.NotContains(t, logs.String(), "level=WARN")
			}
		})
	}
}
