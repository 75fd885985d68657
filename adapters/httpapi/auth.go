package httpapi

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// The request guard: what every request passes before its route.
//
//   - State-changing requests (POST, PUT, PATCH, DELETE) from another origin are refused
//     with 403 whether or not a token is configured: net/http's CrossOriginProtection
//     reads Sec-Fetch-Site (only same-origin and user-initiated requests pass), or
//     compares Origin with Host in browsers that send no Sec-Fetch-Site. A page of
//     another site therefore cannot write to the journal or acknowledge an alert, even
//     with the user's cookie.
//   - Bodies of those requests must be JSON or NDJSON (415 otherwise): an HTML form can
//     send only form encodings and text/plain, and a no-cors fetch only those or none.
//   - With Config.AuthToken set, every /v1 endpoint (and /healthz, /readyz and /metrics
//     with Config.AuthOps) needs "Authorization: Bearer TOKEN" or the page's cookie, which
//     POST /auth/login sets for the History page (EventSource cannot send headers).
//     Both are compared in constant time.

// AuthCookie is the name of the cookie that authenticates the History page.
const AuthCookie = "agentwatch_auth"

// authCookieMaxAge is how long the page's cookie lasts.
const authCookieMaxAge = 7 * 24 * time.Hour

// MinAuthTokenBytes is the shortest token accepted: shorter ones can be guessed.
const MinAuthTokenBytes = 16

// Reasons a request is refused, the label of http_requests_refused_total.
const (
	refusedUnauthorized = "unauthorized"
	refusedCrossOrigin  = "cross_origin"
	refusedMediaType    = "unsupported_media_type"
)

// ReadAuthToken reads the bearer token from a file: its content, surrounding white
// space removed. It must be at least MinAuthTokenBytes of visible ASCII.
func ReadAuthToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("auth token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if err := checkToken(tok); err != nil {
		return "", fmt.Errorf("auth token file %s: %w", path, err)
	}
	return tok, nil
}

// checkToken reports why tok cannot be a token.
func checkToken(tok string) error {
	if len(tok) < MinAuthTokenBytes {
		return fmt.Errorf("the token must be at least %d bytes (found %d); generate one with `openssl rand -hex 32`", MinAuthTokenBytes, len(tok))
	}
	for i := 0; i < len(tok); i++ {
		if tok[i] < 0x21 || tok[i] > 0x7e {
			return fmt.Errorf("the token must be visible ASCII characters only (byte %d is not)", i)
		}
	}
	return nil
}

// auth checks credentials. The zero value (no token) lets every request through.
type auth struct {
	tokenSum  [sha256.Size]byte // sha256 of the token: comparing digests hides the length
	cookieVal string            // the cookie's value, derived from the token
	enabled   bool
}

func newAuth(token string) auth {
	if token == "" {
		return auth{}
	}
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("agentwatch History page cookie v1"))
	return auth{
		tokenSum:  sha256.Sum256([]byte(token)),
		cookieVal: base64.RawURLEncoding.EncodeToString(mac.Sum(nil)),
		enabled:   true,
	}
}

// tokenOK compares a presented token with the configured one in constant time.
func (a auth) tokenOK(presented string) bool {
	sum := sha256.Sum256([]byte(presented))
	return subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) == 1
}

// authenticated reports whether r carries the bearer token or the page's cookie.
func (a auth) authenticated(r *http.Request) bool {
	if !a.enabled {
		return true
	}
	if scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return a.tokenOK(strings.TrimSpace(tok))
	}
	if c, err := r.Cookie(AuthCookie); err == nil {
		return subtle.ConstantTimeCompare([]byte(c.Value), []byte(a.cookieVal)) == 1
	}
	return false
}

// guardMetrics count refused requests.
type guardMetrics struct {
	refused *prometheus.CounterVec
}

func newGuardMetrics() guardMetrics {
	m := guardMetrics{refused: prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "agentwatch", Subsystem: "http", Name: "requests_refused_total",
		Help: "Requests refused before their route: unauthorized (no or a wrong token), cross_origin " +
			"(a state-changing request from another origin), unsupported_media_type (a body that is not JSON or NDJSON).",
	}, []string{"reason"})}
	for _, r := range []string{refusedUnauthorized, refusedCrossOrigin, refusedMediaType} {
		m.refused.WithLabelValues(r)
	}
	return m
}

// Collectors are the server's own metrics, for a Prometheus registry.
func (s *Server) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.guardMetrics.refused}
}

// protected reports whether path needs credentials when a token is configured.
func (s *Server) protected(path string) bool {
	switch {
	case path == "/v1" || strings.HasPrefix(path, "/v1/"):
		return true
	case path == "/healthz" || path == "/readyz" || path == "/metrics":
		return s.cfg.AuthOps
	}
	return false
}

// stateChanging reports whether method may change state (the cross-origin rule).
func stateChanging(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// guard applies the cross-origin, media type and authentication rules (see above).
func (s *Server) guard(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if stateChanging(r.Method) {
			if err := cop.Check(r); err != nil {
				s.refuse(w, r, refusedCrossOrigin, http.StatusForbidden,
					"cross-origin request refused: "+r.Method+" requests must come from this server's own pages or from a non-browser client")
				return
			}
		}
		if s.protected(r.URL.Path) && !s.auth.authenticated(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="agentwatch"`)
			s.refuse(w, r, refusedUnauthorized, http.StatusUnauthorized,
				"authentication required: send \"Authorization: Bearer <token>\" (the token of --auth-token-file), or log in at /login")
			return
		}
		if stateChanging(r.Method) {
			if reason := bodyMediaTypeProblem(r); reason != "" {
				s.refuse(w, r, refusedMediaType, http.StatusUnsupportedMediaType, reason)
				return
			}
		}
		if r.URL.Path == "/" && r.Method == http.MethodGet && s.auth.enabled && !s.auth.authenticated(r) {
			// The page needs the cookie for its API calls: log in first.
			http.Redirect(w, r, "login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers a refused request and counts it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, status int, msg string) {
	s.guardMetrics.refused.WithLabelValues(reason).Inc()
	s.logger.DebugContext(r.Context(), "request refused", "reason", reason, "method", r.Method, "path", r.URL.Path,
		"origin", r.Header.Get("Origin"), "secFetchSite", r.Header.Get("Sec-Fetch-Site"), "remote", r.RemoteAddr)
	writeJSON(w, r, status, errorBody{Error: msg})
}

// jsonBodyTypes are the media types of JSON bodies besides application/json and
// application/*+json; ndjsonTypes (ingest.go) are accepted too.
var jsonBodyTypes = map[string]bool{"application/json": true}

// acceptedBodyType reports whether a body of media type mt is JSON or NDJSON.
func acceptedBodyType(mt string) bool {
	return jsonBodyTypes[mt] || ndjsonTypes[mt] || (strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json"))
}

// bodyMediaTypeProblem says why the body of a state-changing request is refused with
// 415, or "" when it is fine: a body must be declared JSON or NDJSON. A request without
// a body and without a Content-Type is fine (an ack without a body).
func bodyMediaTypeProblem(r *http.Request) string {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
			return ""
		}
		return "Content-Type is missing: send the body as application/json or application/x-ndjson"
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("Content-Type %s is malformed: send application/json or application/x-ndjson", strconvQuote(ct))
	}
	if !acceptedBodyType(mt) {
		return fmt.Sprintf("Content-Type %s is not accepted: send application/json (or application/*+json) or NDJSON (application/x-ndjson, application/jsonl)", strconvQuote(mt))
	}
	return ""
}

// strconvQuote quotes a header value for a message, bounded.
func strconvQuote(s string) string {
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// loginBody is the body of POST /auth/login.
type loginBody struct {
	Token string `json:"token"`
}

// maxLoginBodyBytes bounds the body of POST /auth/login.
const maxLoginBodyBytes = 4 << 10

// postLogin answers POST /auth/login {"token": "..."}: 204 with the page's cookie
// (HttpOnly, SameSite=Strict) when the token is right, 401 otherwise; 404 when the
// server has no token (there is nothing to log in to).
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) {
	if !s.auth.enabled {
		writeJSON(w, r, http.StatusNotFound, errorBody{Error: "this server has no authentication: no login needed"})
		return
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxLoginBodyBytes))
	if err != nil {
		s.writeError(w, r, fmt.Errorf("read body: %w", err))
		return
	}
	var body loginBody
	if err := json.Unmarshal(raw, &body); err != nil {
		s.writeError(w, r, paramError("body", `must be {"token": "..."}: `+err.Error()))
		return
	}
	if !s.auth.tokenOK(body.Token) {
		s.guardMetrics.refused.WithLabelValues(refusedUnauthorized).Inc()
		s.logger.WarnContext(r.Context(), "login with a wrong token", "remote", r.RemoteAddr)
		writeJSON(w, r, http.StatusUnauthorized, errorBody{Error: "wrong token"})
		return
	}
	http.SetCookie(w, s.authCookie(s.auth.cookieVal, int(authCookieMaxAge.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// postLogout answers POST /auth/logout: 204, the page's cookie removed.
func (s *Server) postLogout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, s.authCookie("", -1))
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// authCookie is the page's cookie: HttpOnly so that scripts cannot read it,
// SameSite=Strict so that other sites' requests do not carry it, Secure when the
// server is reached over HTTPS.
func (s *Server) authCookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name: AuthCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: strings.HasPrefix(s.cfg.BaseURL, "https://"),
	}
}

// login holds the login page: a token prompt that POSTs /auth/login and goes back to
// the page it came from.
//
//go:embed login
var login embed.FS

// serveLogin answers GET /login with the token prompt.
func (s *Server) serveLogin(w http.ResponseWriter, r *http.Request) {
	b, err := login.ReadFile("login/login.html")
	if err != nil {
		s.writeError(w, r, fmt.Errorf("login page: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// serveLoginScript answers GET /login.js.
func (s *Server) serveLoginScript(w http.ResponseWriter, r *http.Request) {
	b, err := login.ReadFile("login/login.js")
	if err != nil {
		s.writeError(w, r, fmt.Errorf("login script: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}
