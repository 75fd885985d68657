package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/fx"
	"go.uber.org/fx/fxtest"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
	"github.com/agentwatch/agentwatch/app"
	"github.com/agentwatch/agentwatch/domain"
	"github.com/agentwatch/agentwatch/projections"
)

func TestConfig(t *testing.T) {
	var c httpapi.Config
	c.SetDefaults()
	require.NoError(t, c.Validate())
	assert.Equal(t, "127.0.0.1:8080", c.Addr)
	assert.Equal(t, int64(10<<20), c.MaxBodyBytes)
	assert.Equal(t, 2*time.Second, c.PollInterval)

	bad := httpapi.Config{Addr: "nope", MaxBodyBytes: -1, BaseURL: "ftp://x", ReadTimeout: -time.Second, PollInterval: time.Millisecond}
	err := bad.Validate()
	require.Error(t, err)
	for _, want := range []string{"addr", "max body bytes", "base URL", "read timeout", "poll interval"} {
		assert.Contains(t, err.Error(), want)
	}
	_, err = httpapi.New(bad, &app.Queries{}, nil, nil, nil, nil)
	require.Error(t, err)
	_, err = httpapi.New(httpapi.Config{}, nil, nil, nil, nil, nil)
	require.ErrorContains(t, err, "queries")
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res.StatusCode, string(b)
}

func TestStartStop(t *testing.T) {
	s := newStack(t, stackOptions{})
	srv, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0"}, s.queries, s.ingester, nil, nil, nil)
	require.NoError(t, err)
	assert.Empty(t, srv.Addr())
	require.NoError(t, srv.Stop(t.Context()), "stop before start does nothing")

	require.NoError(t, srv.Start(t.Context()))
	addr := srv.Addr()
	require.NotEmpty(t, addr)
	assert.NotContains(t, addr, ":0")
	assert.Equal(t, "http://"+addr, srv.URL())
	require.Error(t, srv.Start(t.Context()), "a server starts once")

	code, body := get(t, srv.URL()+"/healthz")
	assert.Equal(t, http.StatusOK, code)
	assert.JSONEq(t, `{"status":"ok"}`, body)

	t.Run("a busy port is Start's error", func(t *testing.T) {
		other, err := httpapi.New(httpapi.Config{Addr: addr}, s.queries, nil, nil, nil, nil)
		require.NoError(t, err)
		err = other.Start(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), addr)
	})

	t.Run("Start's context bounds only the listen", func(t *testing.T) {
		other, err := httpapi.New(httpapi.Config{Addr: "127.0.0.1:0", BaseURL: "https://agentwatch.example.com/"}, s.queries, nil, nil, nil, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(t.Context())
		require.NoError(t, other.Start(ctx))
		cancel()
		assert.Equal(t, "https://agentwatch.example.com", other.URL())
		code, _ := get(t, "http://"+other.Addr()+"/healthz")
		assert.Equal(t, http.StatusOK, code)
		require.NoError(t, other.Stop(t.Context()))
	})

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Stop(ctx))
	require.NoError(t, srv.Stop(ctx), "a second stop does nothing")
	_, err = http.Get(srv.URL() + "/healthz") //nolint:noctx // the server is gone; nothing to cancel
	require.Error(t, err)
	require.Error(t, srv.Start(t.Context()), "a stopped server does not start again")
}

func TestFxModule(t *testing.T) {
	s := newStack(t, stackOptions{})
	var srv *httpapi.Server
	fxApp := fxtest.New(t,
		fx.Supply(httpapi.Config{Addr: "127.0.0.1:0"}, s.queries, s.ingester, slog.New(slog.DiscardHandler)),
		fx.Provide(func() prometheus.Gatherer { return s.registry }),
		fx.Supply(httpapi.ReadyCheck(func(context.Context) error { return nil })),
		httpapi.Module,
		fx.Populate(&srv),
	)
	fxApp.RequireStart()
	code, _ := get(t, srv.URL()+"/readyz")
	assert.Equal(t, http.StatusOK, code)
	fxApp.RequireStop()
	assert.Empty(t, fxApp.Err())

	t.Run("optional dependencies", func(t *testing.T) {
		require.NoError(t, fx.ValidateApp(
			fx.NopLogger,
			fx.Supply(s.queries, slog.New(slog.DiscardHandler)),
			httpapi.Module,
		))
	})
}

// brokenReader fails every read, as a store that lost its disk would.
type brokenReader struct{ app.ReadModelStore }

func (brokenReader) GetDocument(context.Context, string, string) (projections.Row, error) {
	return projections.Row{}, errDiskOnFire
}

func (brokenReader) QueryIndex(context.Context, projections.IndexQuery) ([]projections.Row, error) {
	return nil, errDiskOnFire
}

func (brokenReader) ReadCounters(context.Context, string, string, string, string) ([]projections.CounterRow, error) {
	return nil, errDiskOnFire
}

func (brokenReader) SessionEvents(context.Context, string, app.SessionEventsQuery) ([]domain.Event, error) {
	return nil, errDiskOnFire
}

func (brokenReader) LoadSessions(context.Context, []string) (map[string]app.VersionedSession, error) {
	return nil, errDiskOnFire
}

func TestStoreFailureIsALogged500(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))
	reg, err := app.NewRegistry(app.Config{})
	require.NoError(t, err)
	srv, err := httpapi.New(httpapi.Config{}, app.NewQueries(reg, brokenReader{}, brokenReader{}, nil, nil), nil, nil, nil, logger)
	require.NoError(t, err)
	h := httptest.NewServer(srv.Handler())
	defer h.Close()
	for _, path := range []string{"/v1/executions", "/v1/executions/arn:x", "/v1/sessions/s", "/v1/sessions/s/events", "/v1/stats", "/v1/agents/a/stats"} {
		t.Run(path, func(t *testing.T) {
			code, body := get(t, h.URL+path)
			assert.Equal(t, http.StatusInternalServerError, code)
			assert.JSONEq(t, `{"error":"internal error; the server logged the details"}`, body)
		})
	}
	assert.Contains(t, logs.String(), "disk on fire")
	assert.Contains(t, logs.String(), "path=/v1/stats")
}
