#!/usr/bin/env bash
# PP-DEPLOY-01: the production deployment of this job was approved on its protected environment by someone
# other than the person who runs it, as GitLab recorded it (GitLab Premium and Ultimate: protected
# environments with approval rules). Not assumed from the job having started: an environment whose approval
# rules were removed lets the job run with no approval at all, and this check then refuses it.
#
# Environment (GitLab sets the CI_* and GITLAB_USER_LOGIN variables):
#   CI_PROJECT_ID, CI_JOB_ID    this project and job
#   GITLAB_USER_LOGIN           who runs the job (played the manual job); never counts as an approver
#   ENVIRONMENT                 default production
#   APPROVALS_OUT               file: {deployment_id, job_id, deployer, approvals: [{user, status, created_at}],
#                               rules: [{rule, required, approved_by}]},
#                               written also when the check fails (not on an API error)
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Fails on any rejection; passes with an approval by anyone but GITLAB_USER_LOGIN, and only when every approval
# rule GitLab reports (approval_summary) has its required approvals by people other than GITLAB_USER_LOGIN.
# Exit: 0 approved; 1 not approved, or an API error; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_JOB_ID GITLAB_USER_LOGIN APPROVALS_OUT
require_uint CI_PROJECT_ID
require_uint CI_JOB_ID
environment=${ENVIRONMENT:-production}
rm -f -- "${APPROVALS_OUT}"

# The newest deployments of the environment; this job's is among them (it was created when the job was).
api_get "projects/${CI_PROJECT_ID}/deployments?environment=$(uri "${environment}")&order_by=id&sort=desc&per_page=100" \
  >"${PP_TMP}/deployments.json"
jq -e 'type == "array"' "${PP_TMP}/deployments.json" >/dev/null ||
  die "GET /projects/${CI_PROJECT_ID}/deployments did not return a list"
deployment=$(jq -r --argjson job "${CI_JOB_ID}" 'map(select(.deployable.id == $job)) | .[0].id // empty' "${PP_TMP}/deployments.json")
[[ -n ${deployment} ]] || die "no ${environment} deployment belongs to job ${CI_JOB_ID}: the job has no environment, or GitLab did not record it"

api_get "projects/${CI_PROJECT_ID}/deployments/${deployment}" >"${PP_TMP}/deployment.json"
jq -e 'type == "object"' "${PP_TMP}/deployment.json" >/dev/null ||
  die "GET /projects/${CI_PROJECT_ID}/deployments/${deployment} did not return a deployment"
# GitLab lists the approvals twice: `approvals` (older) and per approval rule under approval_summary (newer);
# both are read, and every rule must have its required approvals from people other than the deployer.
jq --arg deployer "${GITLAB_USER_LOGIN}" --argjson job "${CI_JOB_ID}" '
  def who: {user: (.user.username // null), status, created_at: (.created_at // null)};
  ($deployer | ascii_downcase) as $d
  | {deployment_id: .id, job_id: $job, deployer: $deployer,
     approvals: ([(.approvals // [])[], (.approval_summary.rules // [])[].deployment_approvals[]?] | map(who)
                 | unique_by([.user, .status])),
     rules: ((.approval_summary.rules // []) | map({
       rule: (.access_level_description // (if .group_id then "group \(.group_id)" elif .user_id then "user \(.user_id)" else "access level \(.access_level)" end)),
       required: (.required_approvals // 0),
       approved_by: ((.deployment_approvals // []) | map(select(.status == "approved" and (.user.username // "" | ascii_downcase) != $d) | .user.username) | unique)}))}' \
  "${PP_TMP}/deployment.json" >"${APPROVALS_OUT}"

rejected=$(jq -r '.approvals | map(select(.status == "rejected") | .user) | join(", ")' "${APPROVALS_OUT}")
[[ -z ${rejected} ]] || die "the ${environment} deployment ${deployment} was rejected by ${rejected}"
approvers=$(jq -r --arg d "${GITLAB_USER_LOGIN}" \
  '.approvals | map(select(.status == "approved" and (.user // "" | ascii_downcase) != ($d | ascii_downcase) and .user != null) | .user) | unique | join(",")' \
  "${APPROVALS_OUT}")
if [[ -z ${approvers} ]]; then
  if jq -e '.approvals | any(.[]; .status == "approved")' "${APPROVALS_OUT}" >/dev/null; then
    die "the ${environment} deployment ${deployment} was approved only by ${GITLAB_USER_LOGIN}, who runs it: a self-approval does not count"
  fi
  die "the ${environment} deployment ${deployment} holds no approval: the protected environment has no approval rules, or nobody approved"
fi
short=$(jq -r '.rules | map(select((.approved_by | length) < .required) | "\(.rule) (\(.approved_by | length) of \(.required))") | join(", ")' "${APPROVALS_OUT}")
[[ -z ${short} ]] || die "the ${environment} deployment ${deployment} lacks approvals by others than ${GITLAB_USER_LOGIN}: ${short}"
gh_output approved_by "${approvers}"
echo "${environment} deployment ${deployment} approved by ${approvers//,/, } (run by ${GITLAB_USER_LOGIN})"
