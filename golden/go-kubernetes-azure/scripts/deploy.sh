#!/usr/bin/env bash
# Deploy hook for go-kubernetes-azure, called by .github/workflows/deploy.yml and the rollback drill:
#   scripts/deploy.sh ENVIRONMENT COMMIT_SHA
# pipeproof cannot know how you ship, so this fails until you replace the body: a pipeline that pretends to
# deploy would produce false evidence. Keep it idempotent; the drill calls it to roll forward.
set -euo pipefail
environment=${1:?usage: deploy.sh ENVIRONMENT COMMIT_SHA}
sha=${2:?usage: deploy.sh ENVIRONMENT COMMIT_SHA}
echo "::error::scripts/deploy.sh is not configured: deploy ${sha} to ${environment} here" >&2
exit 1
