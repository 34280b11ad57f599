#!/usr/bin/env bash
# The commit production runs now, so review-gate.sh can check every change since. Prints it (empty when
# production was never deployed) on stdout and as step output `sha`. An API or git error fails: an error must
# never read as "no earlier deploy", which would shrink what the review gate checks.
#
# Environment:
#   MODE  environment | promotion
#   environment mode: REPO (owner/name), ENVIRONMENT (default production). Walks the environment's deployments,
#     newest first, page by page, and returns the sha of the first whose newest status is success (a failed
#     or rolled-back deploy leaves failure or error, and production still runs the one before).
#   promotion mode: BEFORE (the commit before the push, github.event.before), PROMOTION_FILE (default
#     deploy/production.json, {"sha": "<40 hex>"}). Reads the file as it was at BEFORE; no BEFORE (all zeros,
#     a new branch) or no file at BEFORE means no earlier deploy.
# Exit: 0 found or none; 1 an API or git error, or a malformed promotion file; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env MODE

from_environment() {
  local environment=${ENVIRONMENT:-production} query next id newest
  require_env REPO
  query=$(jq -rn --arg e "${environment}" '$e | @uri')
  next="repos/${REPO}/deployments?environment=${query}&per_page=100"
  while [[ -n ${next} ]]; do
    api_page "${next}" "${PP_TMP}/deployments.json"
    next=${API_NEXT}
    jq -e 'type == "array"' "${PP_TMP}/deployments.json" >/dev/null ||
      die "GET /repos/${REPO}/deployments did not return a list"
    # Newest first, as GitHub lists them; sort anyway, ids only grow.
    for id in $(jq -r 'sort_by(-.id) | .[].id' "${PP_TMP}/deployments.json"); do
      api_paginate "repos/${REPO}/deployments/${id}/statuses" >"${PP_TMP}/statuses.json"
      newest=$(jq -r 'max_by(.id) | .state // empty' "${PP_TMP}/statuses.json")
      echo "deployment ${id}: newest status ${newest:-(none)}" >&2
      if [[ ${newest} == success ]]; then
        jq -r --argjson id "${id}" '.[] | select(.id == $id) | .sha' "${PP_TMP}/deployments.json"
        return 0
      fi
    done
  done
  echo "no successful ${environment} deployment" >&2
}

from_promotion_file() {
  local file=${PROMOTION_FILE:-deploy/production.json} sha
  if [[ -z ${BEFORE:-} || ${BEFORE} =~ ^0+$ ]]; then
    echo "no commit before this push: no earlier deploy" >&2
    return 0
  fi
  git cat-file -e "${BEFORE}^{commit}" 2>/dev/null ||
    die "commit ${BEFORE} (before the push) is not in this checkout: fetch full history (fetch-depth: 0)"
  if ! git cat-file -e "${BEFORE}:${file}" 2>/dev/null; then
    echo "${file} did not exist at ${BEFORE}: no earlier deploy" >&2
    return 0
  fi
  git show "${BEFORE}:${file}" >"${PP_TMP}/promotion.json"
  sha=$(jq -r '.sha // empty' "${PP_TMP}/promotion.json" 2>/dev/null) ||
    die "${file} at ${BEFORE} is not JSON"
  printf '%s\n' "${sha}"
}

case ${MODE} in
  environment) from_environment >"${PP_TMP}/sha" ;;
  promotion) from_promotion_file >"${PP_TMP}/sha" ;;
  *)
    gh_error "MODE must be environment or promotion, got '${MODE}'"
    exit 2
    ;;
esac
sha=$(cat "${PP_TMP}/sha")
if [[ -n ${sha} && ! ${sha} =~ ^[0-9a-f]{40}$ ]]; then
  die "the last production commit is not a 40-character commit SHA: '${sha}'"
fi
gh_output sha "${sha}"
printf '%s\n' "${sha}"
