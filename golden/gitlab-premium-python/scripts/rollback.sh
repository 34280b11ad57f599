#!/usr/bin/env bash
# Restore hook for gitlab-premium-python: put a version that was deployed before back into an environment.
#   scripts/rollback.sh ENVIRONMENT TARGET_SHA
# Called when a production deploy or its health check fails or is cancelled (TARGET_SHA: the production
# version before it; empty when there was none), and by the quarterly rollback drill, which rolls staging back
# to the production version and then restores the current one. Redeploy the release of TARGET_SHA (for
# example `kubectl rollout undo`, a previous task definition, or the image recorded for that commit). It fails
# until configured, so a drill cannot pass by accident.
set -euo pipefail
environment=${1:?usage: rollback.sh ENVIRONMENT TARGET_SHA}
target=${2-}
echo "::error::scripts/rollback.sh is not configured: restore ${target:-the previous version} in ${environment} here" >&2
exit 1
