package httpapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/agentwatch/agentwatch/app"
)

// Server serves the read API, the ingest endpoint, the History page, health and
// metrics. Handler is usable on its own (httptest, another server); Start and Stop run
// it on Config.Addr. A Server is started at most once. Its methods are safe for
// concurrent use.
type Server struct {
	cfg      Config
	queries  *app.Queries
	ingester *app.Ingester
	ready    func(context.Context) error
	logger   *slog.Logger
	now      func() time.Time
	mux      *http.ServeMux
	handler  http.Handler
	index    []byte // the rendered History page
	auth     auth
	// guardMetrics count the requests the guard refuses.
	guardMetrics guardMetrics
	live         *liveHub

	// stopping makes /readyz answer 503 once Stop began.
	stopping atomic.Bool

	mu      sync.Mutex
	srv     *http.Server
	ln      net.Listener
	served  chan struct{} // closed when Serve returned
	stopped bool
}

// New returns a server; it does not listen yet (see Start). cfg gets its defaults and
// is validated. queries is required. ingester may be nil: POST /v1/events then answers
// 501 (a read-only server). gatherer may be nil: /metrics then serves an empty
// exposition. ready may be nil: /readyz then answers 200 whenever the server serves;
// otherwise /readyz calls it (bounded by Config.ReadyTimeout) and answers 503 with its
// error as the reason. logger may be nil (nothing is logged).
func New(cfg Config, queries *app.Queries, ingester *app.Ingester, gatherer prometheus.Gatherer,
	ready func(context.Context) error, logger *slog.Logger) (*Server, error) {
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("http config: %w", err)
	}
	if queries == nil {
		return nil, errors.New("http server: queries are required")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if gatherer == nil {
		gatherer = prometheus.NewRegistry()
	}
	s := &Server{cfg: cfg, queries: queries, ingester: ingester, ready: ready, logger: logger, now: time.Now,
		auth: newAuth(cfg.AuthToken), guardMetrics: newGuardMetrics()}
	s.live = newLiveHub(queries, cfg.LiveInterval, cfg.MaxLiveClients, logger)
	index, err := renderIndex(cfg)
	if err != nil {
		return nil, err
	}
	s.index = index
	assets, err := newAssetHandler()
	if err != nil {
		return nil, err
	}
	s.mux = s.routes(gatherer, assets)
	s.handler = s.recoverPanics(s.logRequests(s.guard(s.mux)))
	return s, nil
}

// Handler returns the server's handler: every route, behind the request guard (auth.go),
// with request logging and panic recovery. Its live streams (GET /v1/live) stay open
// until the client leaves or Stop ends them: a server of one's own must call Stop before
// its graceful shutdown.
func (s *Server) Handler() http.Handler { return s.handler }

// Start listens on Config.Addr and serves in a goroutine; it never blocks on serving.
// Listening happens before it returns, so a busy port or a bad address is its error,
// and Addr is known when it returns. ctx bounds only the listen: the server keeps
// serving after ctx ends, until Stop.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil || s.stopped {
		return errors.New("http server: already started")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("http server: listen on %s: %w", s.cfg.Addr, err)
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelWarn),
	}
	served := make(chan struct{})
	s.srv, s.ln, s.served = srv, ln, served
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger.Error("http server stopped serving", "addr", ln.Addr().String(), "error", err)
		}
	}()
	s.logger.Info("http server listening", "addr", ln.Addr().String(), "url", s.urlLocked(), "auth", s.auth.enabled)
	if !s.auth.enabled && !isLoopback(ln.Addr()) {
		s.logger.Warn("http server listens beyond loopback without authentication: anyone who reaches "+
			ln.Addr().String()+" can read the API and write to the journal; set --auth-token-file "+
			"(env AGENTWATCH_AUTH_TOKEN_FILE) or listen on 127.0.0.1", "addr", ln.Addr().String())
	}
	return nil
}

// isLoopback reports whether addr, a listening address, is reachable only from this
// host.
func isLoopback(addr net.Addr) bool {
	tcp, ok := addr.(*net.TCPAddr)
	return ok && tcp.IP != nil && tcp.IP.IsLoopback()
}

// Stop shuts the server down gracefully: it ends the live streams (which would
// otherwise never finish) and refuses new ones, stops listening, makes /readyz answer
// 503, and waits for in-flight requests until ctx ends, then closes the connections
// that are left (and says so in its error). Stop before Start only ends the streams
// open on Handler (their browsers reconnect); a second Stop does nothing.
func (s *Server) Stop(ctx context.Context) error {
	s.mu.Lock()
	srv, served, stopped := s.srv, s.served, s.stopped
	if srv == nil || stopped {
		s.mu.Unlock()
		if !stopped {
			s.live.endStreams()
		}
		return nil
	}
	s.stopped = true
	s.mu.Unlock()
	s.stopping.Store(true)
	s.live.Close()
	var err error
	if serr := srv.Shutdown(ctx); serr != nil {
		err = fmt.Errorf("http server: graceful shutdown: %w", serr)
		if cerr := srv.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("http server: close: %w", cerr))
		}
	}
	<-served
	s.logger.Info("http server stopped")
	return err
}

// Addr is the address the server listens on, with the port chosen when Config.Addr
// had port 0; "" before Start.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL is Config.BaseURL, or "http://" and the listening address when it is empty
// ("" before Start in that case).
func (s *Server) URL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.urlLocked()
}

func (s *Server) urlLocked() string {
	if s.cfg.BaseURL != "" {
		return s.cfg.BaseURL
	}
	if s.ln == nil {
		return ""
	}
	host, port, err := net.SplitHostPort(s.ln.Addr().String())
	if err != nil {
		return "http://" + s.ln.Addr().String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}
