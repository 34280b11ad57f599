#!/usr/bin/env bash
# The commit production runs now, so review-gate.sh can check every change since. Prints it (empty when
# production was never deployed). The newest successful deployment of the environment: a failed or
# rolled-back deploy is not `success`, and production still runs the one before. An API error fails: an
# error must never read as "no earlier deploy", which would shrink what the review gate checks.
#
# Environment: CI_PROJECT_ID; ENVIRONMENT (default production); GITLAB_API_URL, PIPEPROOF_API_TOKEN (api.sh).
# Exit: 0 found or none; 1 an API error or an answer that is not a list of deployments; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID
require_uint CI_PROJECT_ID
environment=${ENVIRONMENT:-production}
api_get "projects/${CI_PROJECT_ID}/deployments?environment=$(uri "${environment}")&status=success&order_by=id&sort=desc&per_page=1" \
  >"${PP_TMP}/deployments.json"
jq -e 'type == "array" and all(.[]; (.sha | type == "string") and (.sha | test("^[0-9a-f]{40}$")))' "${PP_TMP}/deployments.json" >/dev/null ||
  die "GET /projects/${CI_PROJECT_ID}/deployments did not return a list of deployments with a commit sha"
jq -r '.[0].sha // empty' "${PP_TMP}/deployments.json"
