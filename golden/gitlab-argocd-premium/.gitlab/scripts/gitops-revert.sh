#!/usr/bin/env bash
# PP-ARGO-04: rollback under Argo CD is a `git revert` of a promotion commit, proposed as a merge request (the
# same review as any promotion: the environment's path is code-owned), and it leaves a rollback record.
# Argo CD syncs the environment back to the previous image once the revert is merged.
#
# Environment:
#   CI_PROJECT_ID, CI_DEFAULT_BRANCH   the project and its default branch (checked out with GIT_DEPTH 0)
#   COMMIT         the promotion commit to revert (40 hex, in the history of HEAD, changing one environment
#                  only; a merge commit is reverted against its first parent); empty: the last first-parent
#                  commit that changed ENVIRONMENT's path (default production), unless that is itself a revert
#                  (reverting a rollback would bring the bad promotion back)
#   ACTOR          who asked for the rollback
#   PIPEPROOF_GITOPS_TOKEN, REMOTE_URL   as for gitops-propose.sh (an http(s) REMOTE_URL on CI_SERVER_HOST only)
#   RECORD_OUT     the rollback record (schema pipeproof/rollback-record/v1), written once the merge request is open
#   ENV_ROOT (default argocd/environments), GITLAB_API_URL, PP_OUTPUT (dotenv file for the outputs)
# Exit: 0 proposed; 1 an error (a commit that is not a promotion, a conflict, an API error); 2 bad environment.
# Outputs: MERGE_REQUEST (iid), ENVIRONMENT.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_DEFAULT_BRANCH ACTOR PIPEPROOF_GITOPS_TOKEN RECORD_OUT
require_uint CI_PROJECT_ID
rm -f -- "${RECORD_OUT}"
if [[ -z ${REMOTE_URL:-} ]]; then
  require_env CI_SERVER_URL CI_PROJECT_PATH
  REMOTE_URL="${CI_SERVER_URL%/}/${CI_PROJECT_PATH}.git"
fi
require_this_gitlab REMOTE_URL
export PIPEPROOF_API_TOKEN="${PIPEPROOF_GITOPS_TOKEN}"
root=${ENV_ROOT:-argocd/environments}
# A revert, however it reached the branch: a commit of `git revert`, the merge of a rollback merge request
# (its title in the merge commit's message), or its squash.
reverts='^(Revert "|This reverts commit [0-9a-f]{40}|Roll back [a-z0-9-]+: revert [0-9a-f]{12})'
if [[ -z ${COMMIT:-} ]]; then
  target=${ENVIRONMENT:-production}
  [[ ${target} =~ ^[a-z0-9-]+$ ]] || { error "gitops-revert.sh: ENVIRONMENT must be a folder name, got '${target}'"; exit 2; }
  COMMIT=$(git log -1 --first-parent --format=%H -- "${root}/${target}/") || die "git log failed (GIT_DEPTH: 0)"
  [[ -n ${COMMIT} ]] || die "nothing has changed ${root}/${target}/: there is no promotion to revert"
  # What the commit brought to the branch: itself, or for a merge every commit it merged.
  messages=$(git log --format=%B "${COMMIT}^1..${COMMIT}" 2>/dev/null || true)
  if grep -qE "${reverts}" <<<"${messages}"; then
    die "the last change to ${root}/${target}/ (${COMMIT}) is already a revert: name the promotion commit to revert in COMMIT"
  fi
  echo "last change to ${root}/${target}/: ${COMMIT}"
fi
[[ ${COMMIT} =~ ^[0-9a-f]{40}$ ]] || { error "gitops-revert.sh: COMMIT must be a 40-character commit SHA, got '${COMMIT}'"; exit 2; }

git cat-file -e "${COMMIT}^{commit}" 2>/dev/null || die "commit ${COMMIT} is not in this checkout (GIT_DEPTH: 0)"
git merge-base --is-ancestor "${COMMIT}" HEAD || die "commit ${COMMIT} is not in the history of ${CI_DEFAULT_BRANCH}"
git rev-parse --quiet --verify "${COMMIT}^1^{commit}" >/dev/null ||
  die "commit ${COMMIT} is the first commit: there is nothing before it to roll back to"
git diff --name-only "${COMMIT}^1" "${COMMIT}" >"${PP_TMP}/changed" || die "git diff of ${COMMIT} failed"
mapfile -t changed <"${PP_TMP}/changed"
((${#changed[@]})) || die "commit ${COMMIT} changes nothing"
environment=''
for file in "${changed[@]}"; do
  [[ ${file} == "${root}"/*/* ]] || die "commit ${COMMIT} changes ${file}, outside ${root}/: it is not a promotion commit"
  env=${file#"${root}"/}
  env=${env%%/*}
  [[ -z ${environment} || ${environment} == "${env}" ]] ||
    die "commit ${COMMIT} changes both ${environment} and ${env}: revert one environment at a time"
  environment=${env}
done
image_of() { git show "$1:${root}/${environment}/release.json" 2>/dev/null | jq -r '.image // empty' 2>/dev/null || true; }
image_from=$(image_of "${COMMIT}")
image_to=$(image_of "${COMMIT}^1")

# GitLab merges a merge request with a merge commit by default: revert it against the branch it was merged into.
mainline=()
if git rev-parse --quiet --verify "${COMMIT}^2" >/dev/null; then mainline=(-m 1); fi
branch="pipeproof/rollback-${environment}-${COMMIT:0:12}"
git switch --quiet --force-create "${branch}"
git -c user.name='pipeproof rollback' -c user.email='pipeproof-rollback@noreply.invalid' \
  revert --no-edit "${mainline[@]}" "${COMMIT}" >"${PP_TMP}/revert.log" 2>&1 ||
  die "git revert ${COMMIT} does not apply cleanly (a later promotion changed the same lines: revert that one first)"
push_branch "${REMOTE_URL}" "${branch}"

title="Roll back ${environment}: revert ${COMMIT:0:12}"
jq -n --arg title "${title}" --arg source "${branch}" --arg target "${CI_DEFAULT_BRANCH}" \
  --arg body "Reverts promotion commit ${COMMIT} (${image_from:-unknown image}) on ${environment}, back to ${image_to:-the previous manifests}. Requested by ${ACTOR}. Argo CD syncs it once merged." \
  '{title: $title, source_branch: $source, target_branch: $target, description: $body, remove_source_branch: true,
    squash: false}' >"${PP_TMP}/mr.json"
created=$(api_send POST "projects/${CI_PROJECT_ID}/merge_requests" "${PP_TMP}/mr.json")
iid=$(jq -er '.iid | numbers' <<<"${created}") ||
  die "POST /projects/${CI_PROJECT_ID}/merge_requests: no merge request iid in the answer"
url=$(jq -r '.web_url // empty' <<<"${created}")

jq -n --arg env "${environment}" --arg commit "${COMMIT}" --arg revert "$(git rev-parse HEAD)" \
  --arg from "${image_from}" --arg to "${image_to}" --arg actor "${ACTOR}" --argjson iid "${iid}" --arg url "${url}" \
  --arg branch "${branch}" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
  def orNull: if . == "" then null else . end;
  {schema: "pipeproof/rollback-record/v1", environment: $env, reverted_commit: $commit, revert_commit: $revert,
   image_from: ($from | orNull), image_to: ($to | orNull), requested_by: $actor,
   merge_request: {iid: $iid, url: ($url | orNull), branch: $branch}, requested_at: $at}' >"${RECORD_OUT}"
gh_output MERGE_REQUEST "${iid}"
gh_output ENVIRONMENT "${environment}"
echo "rollback of ${environment} proposed in merge request !${iid}: revert ${COMMIT}"
