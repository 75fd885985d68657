#!/bin/sh
# Builds the agentwatch binary exactly as deployments/Dockerfile's builder stage does: CI
# runs this, as there is no Docker engine there (deployments/build_test.go checks that the
# two commands are the same). Usage: deployments/build.sh [OUTPUT]  (default /agentwatch)
set -eu
cd "$(dirname "$0")/.."
out="${1:-/agentwatch}"
CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o "$out" ./cmd/agentwatch
