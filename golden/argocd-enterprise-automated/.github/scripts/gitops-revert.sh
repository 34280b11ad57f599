#!/usr/bin/env bash
# PP-ARGO-04: rollback under Argo CD is a `git revert` of a promotion commit, proposed as a pull request (the
# same review as any promotion: the environment's path is code-owned), and it leaves a rollback record.
# Argo CD syncs the environment back to the previous image once the revert is merged.
#
# Environment:
#   REPO, DEFAULT_BRANCH  owner/name and the default branch
#   COMMIT         the promotion commit to revert (40 hex, in DEFAULT_BRANCH's history, changing one environment only);
#                  empty: the last commit that changed ENVIRONMENT's path (default production), unless that is
#                  itself a revert (reverting a rollback would bring the bad promotion back)
#   ACTOR          who asked for the rollback
#   APP_ID, APP_PRIVATE_KEY   the GitHub App the pull request is opened as (see gitops-propose.sh)
#   RECORD_OUT     the rollback record (schema pipeproof/rollback-record/v1), written once the pull request is open
#   ENV_ROOT (default argocd/environments), REMOTE (default origin)
# Exit: 0 proposed; 1 an error (a commit that is not a promotion, a conflict, an API error); 2 bad environment.
# Step outputs: pull_request, environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env REPO DEFAULT_BRANCH ACTOR APP_ID APP_PRIVATE_KEY RECORD_OUT
rm -f -- "${RECORD_OUT}"
root=${ENV_ROOT:-argocd/environments}
if [[ -z ${COMMIT:-} ]]; then
  target=${ENVIRONMENT:-production}
  [[ ${target} =~ ^[a-z0-9-]+$ ]] || { gh_error "gitops-revert.sh: ENVIRONMENT must be a folder name, got '${target}'"; exit 2; }
  COMMIT=$(git log -1 --first-parent --format=%H -- "${root}/${target}/") || die "git log failed (fetch-depth: 0)"
  [[ -n ${COMMIT} ]] || die "nothing has changed ${root}/${target}/: there is no promotion to revert"
  if git log -1 --format=%s "${COMMIT}" | grep -q '^Revert "'; then
    die "the last change to ${root}/${target}/ (${COMMIT}) is already a revert: name the promotion commit to revert in COMMIT"
  fi
  echo "last change to ${root}/${target}/: ${COMMIT}"
fi
[[ ${COMMIT} =~ ^[0-9a-f]{40}$ ]] || { gh_error "gitops-revert.sh: COMMIT must be a 40-character commit SHA, got '${COMMIT}'"; exit 2; }

git cat-file -e "${COMMIT}^{commit}" 2>/dev/null || die "commit ${COMMIT} is not in this checkout (fetch-depth: 0)"
git merge-base --is-ancestor "${COMMIT}" HEAD || die "commit ${COMMIT} is not in the history of ${DEFAULT_BRANCH}"
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

branch="pipeproof/rollback-${environment}-${COMMIT:0:12}"
git switch --quiet --force-create "${branch}"
git -c user.name='pipeproof rollback' -c user.email='pipeproof-rollback@users.noreply.github.com' \
  revert --no-edit "${COMMIT}" >"${PP_TMP}/revert.log" 2>&1 ||
  die "git revert ${COMMIT} does not apply cleanly (a later promotion changed the same lines: revert that one first)"

api_app_token "${APP_ID}" '{"contents": "write", "pull_requests": "write"}'
remote=$(git remote get-url "${REMOTE:-origin}")
if [[ ${remote} =~ ^(https://[^/]+)/ ]]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${BASH_REMATCH[1]}/.extraheader"
  GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "${GITHUB_TOKEN}" | openssl base64 -A)"
  export GIT_CONFIG_VALUE_0
fi
git push --quiet --force "${REMOTE:-origin}" "HEAD:refs/heads/${branch}" 2>"${PP_TMP}/push.err" ||
  die "git push of ${branch} failed: $(tail -n 1 "${PP_TMP}/push.err")"
unset GIT_CONFIG_COUNT GIT_CONFIG_KEY_0 GIT_CONFIG_VALUE_0

jq -n --arg title "Roll back ${environment}: revert ${COMMIT:0:12}" --arg head "${branch}" --arg base "${DEFAULT_BRANCH}" \
  --arg body "Reverts promotion commit ${COMMIT} (${image_from:-unknown image}) on ${environment}, back to ${image_to:-the previous manifests}. Requested by ${ACTOR}. Argo CD syncs it once merged." \
  '{title: $title, head: $head, base: $base, body: $body, maintainer_can_modify: false}' >"${PP_TMP}/pull.json"
created=$(api_send POST "repos/${REPO}/pulls" "${PP_TMP}/pull.json")
number=$(jq -er '.number | numbers' <<<"${created}") || die "POST /repos/${REPO}/pulls: no pull request number in the answer"
url=$(jq -r '.html_url // empty' <<<"${created}")

jq -n --arg env "${environment}" --arg commit "${COMMIT}" --arg revert "$(git rev-parse HEAD)" \
  --arg from "${image_from}" --arg to "${image_to}" --arg actor "${ACTOR}" --argjson pr "${number}" --arg url "${url}" \
  --arg branch "${branch}" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" '
  def orNull: if . == "" then null else . end;
  {schema: "pipeproof/rollback-record/v1", environment: $env, reverted_commit: $commit, revert_commit: $revert,
   image_from: ($from | orNull), image_to: ($to | orNull), requested_by: $actor,
   pull_request: {number: $pr, url: ($url | orNull), branch: $branch}, requested_at: $at}' >"${RECORD_OUT}"
gh_output pull_request "${number}"
gh_output environment "${environment}"
echo "rollback of ${environment} proposed in pull request #${number}: revert ${COMMIT}"
