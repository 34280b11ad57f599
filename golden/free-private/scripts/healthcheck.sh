#!/usr/bin/env bash
# Health check for free-private: scripts/healthcheck.sh URL
# Passes when URL answers 2xx within about five minutes; a failure triggers the automatic rollback.
set -euo pipefail
url=${1:?usage: healthcheck.sh URL}
for attempt in $(seq 1 30); do
  if curl --fail --silent --show-error --max-time 10 --output /dev/null "${url}"; then
    echo "healthy: ${url} (attempt ${attempt})"
    exit 0
  fi
  sleep 10
done
echo "::error::health check failed: ${url} did not answer 2xx" >&2
exit 1
