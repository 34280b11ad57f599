#!/usr/bin/env bash
# PP-ARGO-04: GitOps promotion. Proposes IMAGE (by digest) to argocd/environments/ENVIRONMENT/ as a merge
# request: the digest line of its kustomization.yaml and its release.json ({sha, run_id, image, ...}, what
# promotion-check.sh reads). Nothing is applied to a cluster from CI: Argo CD syncs what is merged, and a
# merge into the production path needs the code owners' approval.
#
# Environment:
#   CI_PROJECT_ID, CI_DEFAULT_BRANCH   the project and the branch the merge request targets
#   ENVIRONMENT          staging | production
#   IMAGE                image@sha256:<64 hex>, the image the build pushed and scanned
#   SOURCE_SHA, BUILD_PIPELINE_ID   the commit built and its pipeline (every check of that pipeline passed)
#   DAST_SHA, DAST_PIPELINE_ID      production only: the pipeline whose DAST job passed against that image
#   PIPEPROOF_GITOPS_TOKEN  a project access token (Developer; api, write_repository): pushes the branch and
#                        opens the merge request. The job token cannot push, so the checkout's origin is not used
#   REMOTE_URL           where to push (default ${CI_SERVER_URL}/${CI_PROJECT_PATH}.git); the token goes to
#                        git as an http extra header through the environment, never in argv or the URL
#                        (in GitLab CI an http(s) REMOTE_URL must be on CI_SERVER_HOST: exit 2 otherwise)
#   ENV_ROOT (default argocd/environments), GITLAB_API_URL, PP_OUTPUT (dotenv file for the outputs)
# Exit: 0 proposed, or the environment already runs IMAGE; 1 an error (nothing is ever written to
# CI_DEFAULT_BRANCH); 2 bad environment.
# Outputs: MERGE_REQUEST (iid, empty when nothing changed), BRANCH (empty when nothing changed).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_DEFAULT_BRANCH ENVIRONMENT IMAGE SOURCE_SHA BUILD_PIPELINE_ID PIPEPROOF_GITOPS_TOKEN
require_uint BUILD_PIPELINE_ID
require_uint CI_PROJECT_ID
bad() { error "gitops-propose.sh: $*"; exit 2; }
case ${ENVIRONMENT} in
  staging) ;;
  production)
    require_env DAST_SHA DAST_PIPELINE_ID
    require_uint DAST_PIPELINE_ID
    [[ ${DAST_SHA} =~ ^[0-9a-f]{40}$ ]] || bad "DAST_SHA must be a 40-character commit SHA, got '${DAST_SHA}'"
    ;;
  *) bad "ENVIRONMENT must be staging or production, got '${ENVIRONMENT}'" ;;
esac
[[ ${IMAGE} =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]] ||
  bad "IMAGE must be an image reference by digest (name@sha256:<64 hex>), got '${IMAGE}'"
[[ ${SOURCE_SHA} =~ ^[0-9a-f]{40}$ ]] || bad "SOURCE_SHA must be a 40-character commit SHA, got '${SOURCE_SHA}'"
if [[ -z ${REMOTE_URL:-} ]]; then
  require_env CI_SERVER_URL CI_PROJECT_PATH
  REMOTE_URL="${CI_SERVER_URL%/}/${CI_PROJECT_PATH}.git"
fi
require_this_gitlab REMOTE_URL
export PIPEPROOF_API_TOKEN="${PIPEPROOF_GITOPS_TOKEN}"

dir="${ENV_ROOT:-argocd/environments}/${ENVIRONMENT}"
kustomization="${dir}/kustomization.yaml"
[[ -f ${kustomization} ]] || die "${kustomization} does not exist: nothing to propose the image to"
marker='^([[:space:]]*digest:[[:space:]]*)sha256:[0-9a-f]{64}([[:space:]]+# pipeproof:digest)[[:space:]]*$'
count=$(grep -cE "${marker}" "${kustomization}" || true)
((count == 1)) || die "${kustomization} must have exactly one 'digest: sha256:<64 hex>  # pipeproof:digest' line, found ${count}"
name=${IMAGE%@*}
grep -qE "^[[:space:]]*-[[:space:]]*name:[[:space:]]*\"?${name//./\\.}\"?[[:space:]]*$" "${kustomization}" ||
  die "${kustomization} has no images entry named ${name}: the digest would not apply to the image the build pushed"

sed -E -i "s|${marker}|\\1${IMAGE##*@}\\2|" "${kustomization}"
jq -n --arg env "${ENVIRONMENT}" --arg image "${IMAGE}" --arg sha "${SOURCE_SHA}" --arg run "${BUILD_PIPELINE_ID}" \
  --arg dast_sha "${DAST_SHA:-}" --arg dast_run "${DAST_PIPELINE_ID:-}" '
  {schema: "pipeproof/gitops-release/v1", environment: $env, image: $image, sha: $sha, run_id: ($run | tonumber),
   dast: (if $dast_run == "" then null else {sha: $dast_sha, run_id: ($dast_run | tonumber)} end)}' >"${dir}/release.json"

if git diff --quiet -- "${dir}"; then
  echo "${ENVIRONMENT} already runs ${IMAGE}: nothing to propose"
  gh_output MERGE_REQUEST ''
  gh_output BRANCH ''
  exit 0
fi

branch="pipeproof/promote-${ENVIRONMENT}-${SOURCE_SHA:0:12}"
git switch --quiet --force-create "${branch}"
git add -- "${dir}"
{
  printf 'Promote %s to %s\n\n' "${SOURCE_SHA:0:12}" "${ENVIRONMENT}"
  printf 'Image: %s\nSource commit: %s\nBuild pipeline: %s\n' "${IMAGE}" "${SOURCE_SHA}" "${BUILD_PIPELINE_ID}"
  if [[ -n ${DAST_PIPELINE_ID:-} ]]; then printf 'DAST pipeline: %s (on %s)\n' "${DAST_PIPELINE_ID}" "${DAST_SHA}"; fi
} >"${PP_TMP}/message"
git -c user.name='pipeproof promotion' -c user.email='pipeproof-promotion@noreply.invalid' \
  commit --quiet --file "${PP_TMP}/message"
push_branch "${REMOTE_URL}" "${branch}"

query="state=opened&source_branch=$(uri "${branch}")&target_branch=$(uri "${CI_DEFAULT_BRANCH}")"
existing=$(api_get "projects/${CI_PROJECT_ID}/merge_requests?${query}")
iid=$(jq -r 'if type == "array" then (.[0].iid // empty) else error("not a list") end' <<<"${existing}") ||
  die "GET /projects/${CI_PROJECT_ID}/merge_requests did not return a list"
if [[ -z ${iid} ]]; then
  jq -n --arg title "Promote ${SOURCE_SHA:0:12} to ${ENVIRONMENT}" --arg source "${branch}" \
    --arg target "${CI_DEFAULT_BRANCH}" --rawfile body "${PP_TMP}/message" \
    '{title: $title, source_branch: $source, target_branch: $target, remove_source_branch: true, squash: false,
      description: ($body + "\nArgo CD syncs this once it is merged; nothing is applied from CI.")}' >"${PP_TMP}/mr.json"
  created=$(api_send POST "projects/${CI_PROJECT_ID}/merge_requests" "${PP_TMP}/mr.json")
  iid=$(jq -er '.iid | numbers' <<<"${created}") ||
    die "POST /projects/${CI_PROJECT_ID}/merge_requests: no merge request iid in the answer"
  echo "opened merge request !${iid}: ${IMAGE} to ${ENVIRONMENT}"
else
  [[ ${iid} =~ ^[0-9]+$ ]] || die "GET /projects/${CI_PROJECT_ID}/merge_requests: iid '${iid}' is not a number"
  echo "merge request !${iid} already proposes ${branch}; its branch now holds ${IMAGE}"
fi
gh_output MERGE_REQUEST "${iid}"
gh_output BRANCH "${branch}"
