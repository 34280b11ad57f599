#!/usr/bin/env bash
# PP-DEPLOY-01: production needs an approval by someone other than the person who triggered the deploy,
# verified from what GitHub recorded, not assumed from the job having started.
#
# Environment:
#   MODE            environment | promotion
#   REPO            owner/name
#   ACTOR           who triggered the deploy (github.triggering_actor); never counts as an approver
#   APPROVALS_OUT   file written also when the check fails (not on an API error):
#                   environment: the run's approvals for ENVIRONMENT, as GitHub returned them
#                   promotion:   {pull_request, author, merged_by, head_sha, approvals: [{user, state, commit_id,
#                                submitted_at}]} with the reviews that count
#   environment mode (environment reviewers, GitHub Enterprise on private repositories):
#     RUN_ID        this run; ENVIRONMENT (default production)
#     Fails on any rejection for the environment; passes with an approval by anyone but ACTOR. The API gives
#     no approval time, so none is recorded.
#   promotion mode (a promotion pull request reviewed by code owners, on any plan):
#     SHA           the commit that merged the promotion pull request; DEFAULT_BRANCH; MIN_APPROVALS (default 1)
#     Counts each reviewer's latest review (DISMISSED cancels an approval, CHANGES_REQUESTED replaces it;
#     COMMENTED changes nothing) when it is APPROVED on the pull request's final head commit and the reviewer
#     is neither its author nor ACTOR.
# Exit: 0 approved; 1 not approved, or an API error; 2 bad environment.
# Step outputs: approved_by (logins, comma-separated).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env MODE REPO ACTOR APPROVALS_OUT
rm -f -- "${APPROVALS_OUT}"

environment_mode() {
  local environment=${ENVIRONMENT:-production} rejected approvers
  require_env RUN_ID
  require_uint RUN_ID
  api_get "repos/${REPO}/actions/runs/${RUN_ID}/approvals" >"${PP_TMP}/approvals.json"
  jq -e 'type == "array"' "${PP_TMP}/approvals.json" >/dev/null ||
    die "GET /repos/${REPO}/actions/runs/${RUN_ID}/approvals did not return a list"
  # Environment names are case-insensitive on GitHub; logins too.
  jq --arg env "${environment}" \
    'map(select(any(.environments[]?; (.name | ascii_downcase) == ($env | ascii_downcase))))' \
    "${PP_TMP}/approvals.json" >"${APPROVALS_OUT}"

  rejected=$(jq -r 'map(select(.state == "rejected") | .user.login) | join(", ")' "${APPROVALS_OUT}")
  [[ -z ${rejected} ]] || die "the ${environment} deployment of run ${RUN_ID} was rejected by ${rejected}"
  approvers=$(jq -r --arg actor "${ACTOR}" \
    'map(select(.state == "approved" and (.user.login // "" | ascii_downcase) != ($actor | ascii_downcase)) | .user.login)
     | unique | join(",")' "${APPROVALS_OUT}")
  if [[ -z ${approvers} ]]; then
    if jq -e 'any(.[]; .state == "approved")' "${APPROVALS_OUT}" >/dev/null; then
      die "the ${environment} deployment of run ${RUN_ID} was approved only by ${ACTOR}, who triggered it: a self-approval does not count"
    fi
    die "run ${RUN_ID} holds no approval for ${environment}: the environment has no required reviewers, or nobody approved"
  fi
  gh_output approved_by "${approvers}"
  echo "${environment} approved for run ${RUN_ID} by ${approvers} (triggered by ${ACTOR})"
}

promotion_mode() {
  local min=${MIN_APPROVALS:-1} number counted
  require_env SHA DEFAULT_BRANCH
  MIN_APPROVALS=${min}
  require_uint MIN_APPROVALS
  ((min >= 1)) || die "MIN_APPROVALS must be at least 1"

  api_paginate "repos/${REPO}/commits/${SHA}/pulls" >"${PP_TMP}/pulls.json"
  number=$(jq -r --arg sha "${SHA}" --arg base "${DEFAULT_BRANCH}" \
    'map(select(.merged_at != null and .base.ref == $base and .merge_commit_sha == $sha)) | sort_by(.number) | .[0].number // empty' \
    "${PP_TMP}/pulls.json")
  if [[ -z ${number} ]]; then
    jq -n --arg sha "${SHA}" '{pull_request: null, merge_commit_sha: $sha, approvals: []}' >"${APPROVALS_OUT}"
    die "commit ${SHA} reached ${DEFAULT_BRANCH} without a pull request: no merged promotion pull request has it as merge commit"
  fi

  api_get "repos/${REPO}/pulls/${number}" >"${PP_TMP}/pull.json"
  jq -e '.merged == true' "${PP_TMP}/pull.json" >/dev/null ||
    die "GET /repos/${REPO}/pulls/${number}: pull request #${number} is not merged"
  api_paginate "repos/${REPO}/pulls/${number}/reviews" >"${PP_TMP}/reviews.json"

  # One jq: the record, then how many count and who, then why the others do not.
  jq -r --slurpfile pull "${PP_TMP}/pull.json" --arg actor "${ACTOR}" "${REVIEW_VERDICTS_JQ}"'
    $pull[0] as $pr | review_verdicts($pr; $actor) as $v
    | ({pull_request: $pr.number, author: $pr.user.login, merged_by: $pr.merged_by.login, head_sha: $pr.head.sha,
        approvals: $v.approvals} | tojson),
      ($v.approvals | length),
      ($v.approvals | map(.user) | join(",")),
      ($v.not_counted[] | "not counted on pull request #\($pr.number): \(.)")
  ' "${PP_TMP}/reviews.json" >"${PP_TMP}/verdict"
  {
    IFS= read -r record
    IFS= read -r counted
    IFS= read -r approvers
    mapfile -t notes
  } <"${PP_TMP}/verdict"
  printf '%s\n' "${record}" >"${APPROVALS_OUT}"
  if ((${#notes[@]})); then printf '%s\n' "${notes[@]}"; fi
  if ((counted < min)); then
    die "promotion pull request #${number} has ${counted} approval(s) on its final head commit by someone other than its author and ${ACTOR}; ${min} required"
  fi
  gh_output approved_by "${approvers}"
  echo "promotion pull request #${number} approved by ${approvers//,/, }"
}

case ${MODE} in
  environment) environment_mode ;;
  promotion) promotion_mode ;;
  *)
    gh_error "MODE must be environment or promotion, got '${MODE}'"
    exit 2
    ;;
esac
