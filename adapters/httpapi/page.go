package httpapi

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"strings"
	"sync"
)

// web holds the History page: plain HTML, CSS and JavaScript, no build step and no
// external resource, so that it works on a machine with no internet.
//
//go:embed web
var web embed.FS

// pageCSP allows the page's own scripts, styles and fetches, nothing else.
const pageCSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// pageData is what index.html is rendered with.
type pageData struct {
	// Config is the page's settings, JSON (pageConfig).
	Config string
	// Version busts browser caches of the assets when they change.
	Version string
}

// pageConfig is what the page reads from its agentwatch-config meta tag.
type pageConfig struct {
	// PollMs is how often the page polls without a live stream.
	PollMs int64 `json:"pollMs"`
	// ConsoleURL is the Step Functions console link template; "" for the default, "none"
	// for no link.
	ConsoleURL string `json:"consoleUrl"`
	// LogLinks are the log link templates.
	LogLinks []LogLink `json:"logLinks"`
}

// assetVersion is a hash of the embedded assets, computed once.
var assetVersion = sync.OnceValue(func() string {
	h := sha256.New()
	_ = fs.WalkDir(web, "web", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := web.ReadFile(path)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00", path, len(b))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)[:6])
})

// renderIndex renders the History page once, with its settings (poll interval, link
// templates).
func renderIndex(cfg Config) ([]byte, error) {
	t, err := template.ParseFS(web, "web/index.html")
	if err != nil {
		return nil, fmt.Errorf("parse history page: %w", err)
	}
	pc := pageConfig{PollMs: cfg.PollInterval.Milliseconds(), ConsoleURL: cfg.ConsoleURL, LogLinks: cfg.LogLinks}
	if pc.LogLinks == nil {
		pc.LogLinks = []LogLink{}
	}
	conf, err := json.Marshal(pc)
	if err != nil {
		return nil, fmt.Errorf("render history page: encode its settings: %w", err)
	}
	var buf bytes.Buffer
	data := pageData{Config: string(conf), Version: assetVersion()}
	if err := t.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("render history page: %w", err)
	}
	return buf.Bytes(), nil
}

// servePage answers GET / with the History page. The page reads its state from the
// query string: view (history, agent, alerts), q (search), agent, status, outcome,
// range (today, 24h, 7d, 30d, all, custom), from, to, granularity (agent view), state
// and kind (alerts view), and session (opens that session's view; alert links point
// there).
func (s *Server) servePage(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.index)
}

// newAssetHandler serves /assets/* from the embedded web/assets directory, without
// directory listings.
func newAssetHandler() (http.Handler, error) {
	sub, err := fs.Sub(web, "web/assets")
	if err != nil {
		return nil, fmt.Errorf("embedded assets: %w", err)
	}
	files := http.StripPrefix("/assets/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			writeJSON(w, r, http.StatusNotFound, errorBody{Error: "no route for " + r.Method + " " + r.URL.Path})
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		// The page asks for ?v={hash of the assets}, so a new build is a new URL.
		if r.URL.Query().Get("v") == assetVersion() {
			h.Set("Cache-Control", "public, max-age=86400, immutable")
		} else {
			h.Set("Cache-Control", "no-cache")
		}
		files.ServeHTTP(w, r)
	}), nil
}
