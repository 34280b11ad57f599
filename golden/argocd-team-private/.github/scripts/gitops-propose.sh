#!/usr/bin/env bash
# PP-ARGO-04: GitOps promotion. Proposes IMAGE (by digest) to argocd/environments/ENVIRONMENT/ as a pull
# request: the digest line of its kustomization.yaml and its release.json ({sha, run_id, image, ...}, what
# candidate.sh and last-production.sh read). Nothing is applied to a cluster from CI: Argo CD syncs what is
# merged, and a merge into the production path needs the code owners' review.
#
# Environment:
#   REPO, DEFAULT_BRANCH  owner/name and the default branch the pull request targets
#   ENVIRONMENT          staging | production
#   IMAGE                image@sha256:<64 hex>, the image the build pushed and scanned
#   SOURCE_SHA, BUILD_RUN_ID   the commit built and its deploy.yml run (every check of that run passed)
#   DAST_SHA, DAST_RUN_ID      production only: the staging run whose DAST job passed against that image
#   APP_ID, APP_PRIVATE_KEY    the GitHub App the pull request is opened as (the workflow token's pull
#                        requests start no workflow, so their required checks would never report)
#   ENV_ROOT (default argocd/environments), REMOTE (default origin)
# Exit: 0 proposed, or the environment already runs IMAGE; 1 an error (nothing half-done is left on DEFAULT_BRANCH);
# 2 bad environment.
# Step outputs: pull_request (number, empty when nothing changed), branch.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env REPO DEFAULT_BRANCH ENVIRONMENT IMAGE SOURCE_SHA BUILD_RUN_ID APP_ID APP_PRIVATE_KEY
require_uint BUILD_RUN_ID
bad() { gh_error "gitops-propose.sh: $*"; exit 2; }
case ${ENVIRONMENT} in
  staging) ;;
  production)
    require_env DAST_SHA DAST_RUN_ID
    require_uint DAST_RUN_ID
    [[ ${DAST_SHA} =~ ^[0-9a-f]{40}$ ]] || bad "DAST_SHA must be a 40-character commit SHA, got '${DAST_SHA}'"
    ;;
  *) bad "ENVIRONMENT must be staging or production, got '${ENVIRONMENT}'" ;;
esac
[[ ${IMAGE} =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]] ||
  bad "IMAGE must be an image reference by digest (name@sha256:<64 hex>), got '${IMAGE}'"
[[ ${SOURCE_SHA} =~ ^[0-9a-f]{40}$ ]] || bad "SOURCE_SHA must be a 40-character commit SHA, got '${SOURCE_SHA}'"

dir="${ENV_ROOT:-argocd/environments}/${ENVIRONMENT}"
kustomization="${dir}/kustomization.yaml"
[[ -f ${kustomization} ]] || die "${kustomization} does not exist: nothing to propose the image to"
marker='^([[:space:]]*digest:[[:space:]]*)sha256:[0-9a-f]{64}([[:space:]]+# pipeproof:digest)[[:space:]]*$'
count=$(grep -cE "${marker}" "${kustomization}" || true)
((count == 1)) || die "${kustomization} must have exactly one 'digest: sha256:<64 hex>  # pipeproof:digest' line, found ${count}"
name=${IMAGE%@*}
grep -qE "^[[:space:]]*-[[:space:]]*name:[[:space:]]*\"?${name//./\\.}\"?[[:space:]]*$" "${kustomization}" ||
  die "${kustomization} has no images entry named ${name}: the digest would not apply to the image the build pushed"

digest=${IMAGE##*@}
sed -E -i "s|${marker}|\\1${digest}\\2|" "${kustomization}"
jq -n --arg env "${ENVIRONMENT}" --arg image "${IMAGE}" --arg sha "${SOURCE_SHA}" --arg run "${BUILD_RUN_ID}" \
  --arg dast_sha "${DAST_SHA:-}" --arg dast_run "${DAST_RUN_ID:-}" '
  {schema: "pipeproof/gitops-release/v1", environment: $env, image: $image, sha: $sha, run_id: ($run | tonumber),
   dast: (if $dast_run == "" then null else {sha: $dast_sha, run_id: ($dast_run | tonumber)} end)}' >"${dir}/release.json"

if git diff --quiet -- "${dir}"; then
  echo "${ENVIRONMENT} already runs ${IMAGE}: nothing to propose"
  gh_output pull_request ''
  exit 0
fi

branch="pipeproof/promote-${ENVIRONMENT}-${SOURCE_SHA:0:12}"
git switch --quiet --force-create "${branch}"
git add -- "${dir}"
{
  printf 'Promote %s to %s\n\n' "${SOURCE_SHA:0:12}" "${ENVIRONMENT}"
  printf 'Image: %s\nSource commit: %s\nBuild run: %s\n' "${IMAGE}" "${SOURCE_SHA}" "${BUILD_RUN_ID}"
  if [[ -n ${DAST_RUN_ID:-} ]]; then printf 'DAST run: %s (on %s)\n' "${DAST_RUN_ID}" "${DAST_SHA}"; fi
} >"${PP_TMP}/message"
git -c user.name='pipeproof promotion' -c user.email='pipeproof-promotion@users.noreply.github.com' \
  commit --quiet --file "${PP_TMP}/message"

api_app_token "${APP_ID}" '{"contents": "write", "pull_requests": "write"}'
# The token goes to git through the environment (never argv): an extra header for the remote's host only.
remote=$(git remote get-url "${REMOTE:-origin}")
if [[ ${remote} =~ ^(https://[^/]+)/ ]]; then
  export GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0="http.${BASH_REMATCH[1]}/.extraheader"
  GIT_CONFIG_VALUE_0="AUTHORIZATION: basic $(printf 'x-access-token:%s' "${GITHUB_TOKEN}" | openssl base64 -A)"
  export GIT_CONFIG_VALUE_0
fi
git push --quiet --force "${REMOTE:-origin}" "HEAD:refs/heads/${branch}" 2>"${PP_TMP}/push.err" ||
  die "git push of ${branch} failed: $(tail -n 1 "${PP_TMP}/push.err")"
unset GIT_CONFIG_COUNT GIT_CONFIG_KEY_0 GIT_CONFIG_VALUE_0

owner=${REPO%%/*}
existing=$(api_get "repos/${REPO}/pulls?state=open&head=${owner}:${branch}&base=${DEFAULT_BRANCH}")
number=$(jq -r 'if type == "array" then (.[0].number // empty) else error("not a list") end' <<<"${existing}") ||
  die "GET /repos/${REPO}/pulls did not return a list"
if [[ -z ${number} ]]; then
  jq -n --arg title "Promote ${SOURCE_SHA:0:12} to ${ENVIRONMENT}" --arg head "${branch}" --arg base "${DEFAULT_BRANCH}" \
    --rawfile body "${PP_TMP}/message" \
    '{title: $title, head: $head, base: $base, body: ($body + "\nArgo CD syncs this once it is merged; nothing is applied from CI."), maintainer_can_modify: false}' \
    >"${PP_TMP}/pull.json"
  created=$(api_send POST "repos/${REPO}/pulls" "${PP_TMP}/pull.json")
  number=$(jq -er '.number | numbers' <<<"${created}") || die "POST /repos/${REPO}/pulls: no pull request number in the answer"
  echo "opened pull request #${number}: ${IMAGE} to ${ENVIRONMENT}"
else
  echo "pull request #${number} already proposes ${branch}; its branch now holds ${IMAGE}"
fi
gh_output pull_request "${number}"
gh_output branch "${branch}"
