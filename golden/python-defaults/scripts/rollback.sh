#!/usr/bin/env bash
# Rollback hook for python-defaults, called when a production health check fails and by the quarterly
# rollback drill:  scripts/rollback.sh ENVIRONMENT
# Restore the previously deployed version (for example `kubectl rollout undo`, a previous task definition,
# or redeploying the last good commit). It fails until configured, so a drill cannot pass by accident.
set -euo pipefail
environment=${1:?usage: rollback.sh ENVIRONMENT}
echo "::error::scripts/rollback.sh is not configured: roll ${environment} back to the previous version here" >&2
exit 1
