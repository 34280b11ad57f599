#!/usr/bin/env bash
# Deploy hook for gitlab-free-go, called by the deploy workflow:
#   scripts/deploy.sh ENVIRONMENT COMMIT_SHA IMAGE
# IMAGE is the image the pipeline built, scanned and recorded, by digest (no image: containers are off@sha256:...);
# deploy exactly that reference, never a tag. The health check that follows requires the environment to serve
# COMMIT_SHA (in the body of /healthz or an X-Version header).
# pipeproof cannot know how you ship, so this fails until you replace the body: a pipeline that pretends to
# deploy would produce false evidence. Keep it idempotent.
set -euo pipefail
environment=${1:?usage: deploy.sh ENVIRONMENT COMMIT_SHA IMAGE}
sha=${2:?usage: deploy.sh ENVIRONMENT COMMIT_SHA IMAGE}
image=${3-}
echo "::error::scripts/deploy.sh is not configured: deploy ${image:-${sha}} to ${environment} here" >&2
exit 1
