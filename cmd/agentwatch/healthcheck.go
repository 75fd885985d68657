package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/agentwatch/agentwatch/adapters/httpapi"
)

// newHealthcheckCommand is `agentwatch healthcheck`: the container health check of an
// image without a shell or curl (distroless). It GETs /healthz of the worker on --http
// (a wildcard host means this host) and exits 0 on 200, 1 otherwise.
func newHealthcheckCommand() *cobra.Command {
	var addr, tokenFile string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck",
		Short: "Exit 0 if the worker at --http answers /healthz (the container's health check)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return fmt.Errorf("--http %q: %w", addr, err)
			}
			if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
				host = "127.0.0.1"
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
			if err != nil {
				return fmt.Errorf("healthz request: %w", err)
			}
			if tokenFile != "" {
				// The worker may guard /healthz too (--auth-ops-endpoints).
				tok, err := httpapi.ReadAuthToken(tokenFile)
				if err != nil {
					return fmt.Errorf("--auth-token-file: %w", err)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return fmt.Errorf("healthz: %w", err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("healthz: %s", resp.Status)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "http", envOr("AGENTWATCH_HTTP_ADDR", "127.0.0.1:8080"), "the worker's HTTP listen address (env AGENTWATCH_HTTP_ADDR)")
	cmd.Flags().StringVar(&tokenFile, "auth-token-file", envOr("AGENTWATCH_AUTH_TOKEN_FILE", ""), "the worker's token file, sent as a bearer token (env AGENTWATCH_AUTH_TOKEN_FILE)")
	cmd.Flags().DurationVar(&timeout, "timeout", 3*time.Second, "how long to wait for the answer")
	return cmd
}
