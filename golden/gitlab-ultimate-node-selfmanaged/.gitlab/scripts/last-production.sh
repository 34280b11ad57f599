#!/usr/bin/env bash
# The commit production runs now, so review-gate.sh can check every change since. Prints it (empty when
# production was never deployed). The newest successful deployment of the environment made by the production
# job (DEPLOY_JOB, default deploy-production) of a default-branch pipeline: a failed or rolled-back deploy is
# not `success`, and a deployment created any other way (the Deployments API, a job of a merge request's own
# pipeline: any Developer can do either, and on GitLab Free nothing protects the environment) is ignored and
# named, because a forged newer one would shrink what the review gate checks. An API error fails: an error must
# never read as "no earlier deploy".
#
# Environment: CI_PROJECT_ID, CI_DEFAULT_BRANCH; ENVIRONMENT (default production); DEPLOY_JOB (default
# deploy-production); GITLAB_API_URL, PIPEPROOF_API_TOKEN (api.sh).
# Exit: 0 found or none; 1 an API error or an answer that is not a list of deployments; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_DEFAULT_BRANCH
require_uint CI_PROJECT_ID
environment=${ENVIRONMENT:-production}
api_paginate "projects/${CI_PROJECT_ID}/deployments?environment=$(uri "${environment}")&status=success&order_by=id&sort=desc" \
  >"${PP_TMP}/deployments.json"
jq -e 'type == "array" and all(.[]; type == "object" and (.sha | type == "string") and (.sha | test("^[0-9a-f]{40}$")))' \
  "${PP_TMP}/deployments.json" >/dev/null ||
  die "GET /projects/${CI_PROJECT_ID}/deployments did not return a list of deployments with a commit sha"
jq -r --arg job "${DEPLOY_JOB:-deploy-production}" --arg branch "${CI_DEFAULT_BRANCH}" '
  sort_by(-.id) | .[]
  | select((.deployable | type) != "object" or .deployable.name != $job or .ref != $branch or (.deployable.tag // false))
  | "ignored \(.environment.name // "?") deployment \(.id) of \(.sha[:12]) by \(.user.username // "?"): not the \($job) job of a \($branch) pipeline"' \
  "${PP_TMP}/deployments.json" >&2
jq -r --arg job "${DEPLOY_JOB:-deploy-production}" --arg branch "${CI_DEFAULT_BRANCH}" '
  [sort_by(-.id) | .[]
   | select((.deployable | type) == "object" and .deployable.name == $job and .ref == $branch and ((.deployable.tag // false) | not))]
  | .[0].sha // empty' "${PP_TMP}/deployments.json"
