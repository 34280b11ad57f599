#!/usr/bin/env bash
# PP-ARGO-03, PP-DEPLOY-03, PP-SCAN-09: verifies the production promotion commit (the merge of the merge
# request that changed argocd/environments/production/) before it is recorded. Argo CD syncs production from
# the default branch; CI deploys nothing, so this is the check that what production now names was built,
# checked, scanned on staging and approved:
#   - release.json at CI_COMMIT_SHA is well-formed (sha, run_id, image by digest, dast {sha, run_id}) and the
#     kustomization beside it carries the same digest on its `# pipeproof:digest` line;
#   - the build pipeline (run_id) ran for that sha on the default branch (a push), and the latest attempt of
#     every REQUIRED_JOBS job in it is `success`; the DAST pipeline ran for dast.sha the same way and its
#     DAST_JOB is `success`, and staging's release.json at dast.sha names the same image (what DAST scanned);
#   - the build job's release-candidate.json names that sha and image; sbom.spdx.json (BUILD_JOB) and
#     evidence-manifest.json (EVIDENCE_JOB) are downloaded to the working directory for the record;
#   - the promotion merge request (merged into the default branch, CI_COMMIT_SHA its merge, squash or head
#     commit) has MIN_APPROVALS fresh approvals (review-gate.sh's rule on that one commit) by people other than
#     its author, whoever merged it and GITLAB_USER_LOGIN; on Premium every approval rule GitLab reports
#     (approval_state) has its required approvals among those (Free answers 404 there: no rules).
#
# Environment (GitLab sets the CI_* and GITLAB_USER_LOGIN variables):
#   CI_PROJECT_ID, CI_DEFAULT_BRANCH, CI_COMMIT_SHA   this project, its default branch, the promotion commit
#   GITLAB_USER_LOGIN   who pushed the promotion (merged it); never counts as an approver
#   REQUIRED_JOBS       newline-separated job names that must be `success` in the build pipeline
#   DAST_JOB            default dast;  BUILD_JOB default build;  EVIDENCE_JOB default evidence
#   MIN_APPROVALS       default 1
#   PROMOTION_FILE      default argocd/environments/production/release.json (read from git at CI_COMMIT_SHA)
#   KUSTOMIZATION       default the kustomization.yaml beside PROMOTION_FILE
#   STAGING_FILE        default ../staging/release.json beside PROMOTION_FILE's folder
#   APPROVALS_OUT       file: {merge_request: {iid, web_url, author, merged_by, merged_at}, approvals: [{user,
#                       approved_at}], not_counted: [..], rules: [{rule, type, required, approved_by}] or null
#                       (no approval rules: GitLab Free)}; written also when the approval check fails
#   CHECKS_OUT          file: the jobs of both pipelines [{pipeline_id, name, stage, status, id, allow_failure,
#                       web_url, finished_at}], written once both lists are read, whatever they hold
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Outputs (PP_OUTPUT), written as soon as each is known: PREVIOUS_SHA (release.json's sha before the push:
# at CI_COMMIT_BEFORE_SHA, else at CI_COMMIT_SHA's first parent; empty on the first promotion), SHA, BUILD_PIPELINE_ID, IMAGE, DAST_SHA, DAST_PIPELINE_ID.
# Needs the history (GIT_DEPTH: 0). A refused check is reported and the others still run (so the record files
# are complete); an API or git error, or a release.json that names nothing checkable, stops at once.
# Exit: 0 every check passed; 1 a check refused, or an API or git error; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env CI_PROJECT_ID CI_DEFAULT_BRANCH CI_COMMIT_SHA GITLAB_USER_LOGIN REQUIRED_JOBS APPROVALS_OUT CHECKS_OUT
require_uint CI_PROJECT_ID
MIN_APPROVALS=${MIN_APPROVALS:-1}
require_uint MIN_APPROVALS
bad() { # MESSAGE: exit 2
  error "promotion-check.sh: $*"
  exit 2
}
((MIN_APPROVALS >= 1)) || bad "MIN_APPROVALS must be at least 1"
[[ ${CI_COMMIT_SHA} =~ ^[0-9a-f]{40}$ ]] || bad "CI_COMMIT_SHA must be a 40-character commit SHA, got '${CI_COMMIT_SHA}'"
file=${PROMOTION_FILE:-argocd/environments/production/release.json}
kustomization=${KUSTOMIZATION:-$(dirname -- "${file}")/kustomization.yaml}
staging_file=${STAGING_FILE:-$(dirname -- "$(dirname -- "${file}")")/staging/release.json}
mapfile -t required < <(printf '%s\n' "${REQUIRED_JOBS}" | sed -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v '^$' || true)
((${#required[@]})) || bad "REQUIRED_JOBS names no job"
rm -f -- "${APPROVALS_OUT}" "${CHECKS_OUT}"
project="projects/${CI_PROJECT_ID}"
here=$(dirname -- "${BASH_SOURCE[0]}")

refused=0
refuse() { # MESSAGE: one ::error:: line; the script goes on and exits 1 at the end
  error "$*"
  refused=1
}

# --- the promotion commit ---------------------------------------------------------------------------------
git cat-file -e "${CI_COMMIT_SHA}^{commit}" 2>/dev/null ||
  die "the promotion commit ${CI_COMMIT_SHA} is not in this clone: fetch the whole history (GIT_DEPTH: 0)"
show() { # COMMIT PATH: the file as it is at COMMIT; returns 1 when it does not exist there
  git cat-file -e "$1:$2" 2>/dev/null || return 1
  git show "$1:$2"
}
# --- release.json, first: the record names the candidate even when a later check or an API call fails -----
show "${CI_COMMIT_SHA}" "${file}" >"${PP_TMP}/release.json" || die "${file} does not exist at ${CI_COMMIT_SHA}"
jq -r '
  if type != "object" then error("not an object") else . end
  | [(.sha | strings), (.run_id | numbers | tostring), (.image | strings), (.dast.sha | strings), (.dast.run_id | numbers | tostring)]
  | if length == 5 then join(" ") else error("incomplete") end' "${PP_TMP}/release.json" >"${PP_TMP}/release.txt" 2>/dev/null ||
  die "${file} at ${CI_COMMIT_SHA} must hold sha, run_id (a number), image and dast {sha, run_id}: production takes only a built candidate that passed DAST on staging"
read -r sha build_pipeline image dast_sha dast_pipeline <"${PP_TMP}/release.txt"
[[ ${sha} =~ ^[0-9a-f]{40}$ ]] || die "${file}: sha '${sha}' is not a 40-character commit SHA"
[[ ${dast_sha} =~ ^[0-9a-f]{40}$ ]] || die "${file}: dast.sha '${dast_sha}' is not a 40-character commit SHA"
[[ ${build_pipeline} =~ ^[1-9][0-9]{0,18}$ ]] || die "${file}: run_id '${build_pipeline}' is not a pipeline id"
[[ ${dast_pipeline} =~ ^[1-9][0-9]{0,18}$ ]] || die "${file}: dast.run_id '${dast_pipeline}' is not a pipeline id"
[[ ${image} =~ ^[a-z0-9][a-z0-9._/:-]*@sha256:[0-9a-f]{64}$ ]] ||
  die "${file}: image '${image}' is not an image by digest (name@sha256:<64 hex>)"
gh_output SHA "${sha}"
gh_output BUILD_PIPELINE_ID "${build_pipeline}"
gh_output IMAGE "${image}"
gh_output DAST_SHA "${dast_sha}"
gh_output DAST_PIPELINE_ID "${dast_pipeline}"

# --- the production commit it replaces, and what it changed ------------------------------------------------
# What the push replaced: CI_COMMIT_BEFORE_SHA when it is an ancestor (a fast-forward merge of a promotion merge
# request brings every commit of it: a change hidden in an earlier one is judged too), else the first parent.
previous='' parent=''
if [[ ${CI_COMMIT_BEFORE_SHA:-} =~ ^[0-9a-f]{40}$ && ${CI_COMMIT_BEFORE_SHA} != "${CI_COMMIT_SHA}" ]] &&
  git merge-base --is-ancestor "${CI_COMMIT_BEFORE_SHA}" "${CI_COMMIT_SHA}" 2>/dev/null; then
  parent=${CI_COMMIT_BEFORE_SHA}
else
  parent=$(git rev-parse --verify --quiet "${CI_COMMIT_SHA}^1") || parent=''
fi
if [[ -n ${parent} ]]; then
  if show "${parent}" "${file}" >"${PP_TMP}/previous.json"; then
    previous=$(jq -r 'if type == "object" and (.sha | type == "string" or type == "null") then .sha // "" else error("no sha") end' \
      "${PP_TMP}/previous.json" 2>/dev/null) || die "${file} at ${parent} is not a release file with a \"sha\""
    [[ -z ${previous} || ${previous} =~ ^[0-9a-f]{40}$ ]] ||
      die "${file} at ${parent} names '${previous}', not a 40-character commit SHA"
  fi
fi
gh_output PREVIOUS_SHA "${previous}"
echo "production ran ${previous:-nothing yet (first promotion)} before ${CI_COMMIT_SHA}"

# The promotion branch is pushable by any Developer until the code owners approve it: a promotion (and the
# revert of one, a rollback) changes PROMOTION_FILE and, in KUSTOMIZATION, the `# pipeproof:digest` line only.
digest_line='^([[:space:]]*digest:[[:space:]]*)sha256:[0-9a-f]{64}([[:space:]]+# pipeproof:digest[[:space:]]*)$'
if [[ -z ${parent} ]]; then
  refuse "the promotion commit ${CI_COMMIT_SHA} has no parent: there is nothing to compare what it changes with"
else
  git diff --no-renames --name-only "${parent}" "${CI_COMMIT_SHA}" -- >"${PP_TMP}/changed" ||
    die "git diff ${parent} ${CI_COMMIT_SHA} failed (GIT_DEPTH: 0)"
  others=$(grep -vxF -e "${file}" -e "${kustomization}" "${PP_TMP}/changed" | paste -sd ' ' || true)
  for at in "${parent}" "${CI_COMMIT_SHA}"; do
    # (awk ends every line: whether the last one has its newline changes nothing Argo CD applies)
    { show "${at}" "${kustomization}" || true; } | sed -E "s/${digest_line}/\\1sha256:<digest>\\2/" | awk '{ print }' \
      >"${PP_TMP}/kustomization-${at}"
  done
  lines=$(git diff --no-index --no-ext-diff --no-color -U0 -- "${PP_TMP}/kustomization-${parent}" "${PP_TMP}/kustomization-${CI_COMMIT_SHA}" |
    awk '/^@@/ { hunks = 1; next } hunks && /^[-+]/ { if (++n <= 10) print } END { if (n > 10) print "(" n - 10 " more)" }' |
    paste -sd '|' | sed 's/|/; /g' || true)
  [[ -z ${others} ]] ||
    refuse "the promotion ${CI_COMMIT_SHA} changes ${others}: a promotion changes ${file} and the digest line of ${kustomization}, nothing else"
  [[ -z ${lines} ]] ||
    refuse "the promotion ${CI_COMMIT_SHA} changes ${kustomization} beyond its '# pipeproof:digest' line: ${lines}"
fi

# --- the promotion merge request and its approvals --------------------------------------------------------
# review-gate.sh on this one commit: its merged merge request, approvals by others than the author and
# GITLAB_USER_LOGIN and never a bot's, each given after the last push or carried over a rebase that changed
# nothing (GitLab Free keeps approvals across pushes).
mrs="${PP_TMP}/promotion-mr.json"
if SHA=${CI_COMMIT_SHA} PREVIOUS_SHA='' MRS_OUT=${mrs} MIN_APPROVALS=${MIN_APPROVALS} bash "${here}/review-gate.sh"; then
  :
else
  [[ -s ${mrs} ]] || exit 1 # an API error, reported by review-gate.sh
  refused=1
fi
iid=$(jq -r '.[0].iid // empty' "${mrs}")
if [[ -z ${iid} ]]; then
  refused=1 # review-gate.sh named the commit that has no merged merge request
  jq -n '{merge_request: null, approvals: [], not_counted: [], rules: null}' >"${APPROVALS_OUT}"
else
  api_get "${project}/merge_requests/${iid}" >"${PP_TMP}/mr.json"
  jq -e --arg sha "${CI_COMMIT_SHA}" --arg b "${CI_DEFAULT_BRANCH}" '
    .state == "merged" and .target_branch == $b and ([.merge_commit_sha, .squash_commit_sha, .sha] | index($sha))' \
    "${PP_TMP}/mr.json" >/dev/null ||
    refuse "merge request !${iid} did not merge ${CI_COMMIT_SHA} into ${CI_DEFAULT_BRANCH}: it is not the promotion merge request"
  # GitLab Free has no approval rules: approval_state answers 404 there.
  rules=null
  if api_get "${project}/merge_requests/${iid}/approval_state" >"${PP_TMP}/state.json" 2>"${PP_TMP}/state.err"; then
    jq -e '.rules | type == "array"' "${PP_TMP}/state.json" >/dev/null ||
      die "GET /${project}/merge_requests/${iid}/approval_state did not return approval rules"
    rules=$(jq -c 'if .rules == [] then null else .rules end' "${PP_TMP}/state.json")
  elif grep -q ' HTTP 404: ' "${PP_TMP}/state.err"; then
    echo "merge request !${iid}: no approval rules (approval_state answers 404: GitLab Free)"
  else
    cat -- "${PP_TMP}/state.err" >&2
    exit 1
  fi
  jq --argjson rules "${rules}" --arg runner "${GITLAB_USER_LOGIN}" '
    .[0] as $r
    | (($r.merged_by // "") | ascii_downcase) as $merger
    | {merge_request: {iid: $r.iid, web_url: $r.web_url, author: $r.author, merged_by: $r.merged_by, merged_at: $r.merged_at},
       approvals: ($r.approvals | map(select((.user | ascii_downcase) != $merger))),
       not_counted: ($r.not_counted + ($r.approvals | map(select((.user | ascii_downcase) == $merger) | "\(.user): merged it")))}
    | (.approvals | map(.user | ascii_downcase)) as $counted
    | .rules = (if $rules == null then null else $rules | map({
        rule: .name, type: (.rule_type // null), required: (.approvals_required // 0),
        approved_by: ((.approved_by // []) | map(.username) | map(select(ascii_downcase as $u | $counted | index($u))) | unique)}) end)' \
    "${mrs}" >"${APPROVALS_OUT}"
  counted=$(jq '.approvals | length' "${APPROVALS_OUT}")
  jq -r --arg i "${iid}" '.not_counted[] | select(endswith(": merged it")) | "not counted on !\($i): \(.)"' "${APPROVALS_OUT}"
  if ((counted < MIN_APPROVALS)); then
    refuse "promotion merge request !${iid} has ${counted} fresh approval(s) by someone other than its author, whoever merged it and ${GITLAB_USER_LOGIN}; ${MIN_APPROVALS} required"
  fi
  short=$(jq -r '(.rules // []) | map(select((.approved_by | length) < .required) | "\(.rule) (\(.approved_by | length) of \(.required))") | join(", ")' "${APPROVALS_OUT}")
  [[ -z ${short} ]] || refuse "promotion merge request !${iid}: approval rule(s) not met by counted approvals: ${short}"
fi

# --- the kustomization, the candidate's history, staging --------------------------------------------------
show "${CI_COMMIT_SHA}" "${kustomization}" >"${PP_TMP}/kustomization.yaml" ||
  die "${kustomization} does not exist at ${CI_COMMIT_SHA}"
digests=$(sed -nE 's/^[[:space:]]*digest:[[:space:]]*(sha256:[0-9a-f]{64})[[:space:]]+# pipeproof:digest[[:space:]]*$/\1/p' \
  "${PP_TMP}/kustomization.yaml" | sort -u | paste -sd ' ')
[[ ${digests} == "${image##*@}" ]] ||
  refuse "${kustomization} deploys '${digests:-no pipeproof:digest line}', not ${image##*@}, the image release.json names"
for commit in "${sha}" "${dast_sha}"; do
  git merge-base --is-ancestor "${commit}" "${CI_COMMIT_SHA}" 2>/dev/null ||
    refuse "${commit} is not in the history of ${CI_COMMIT_SHA}: only commits merged into ${CI_DEFAULT_BRANCH} are promoted"
done
if show "${dast_sha}" "${staging_file}" >"${PP_TMP}/staging.json" 2>/dev/null; then
  jq -e --arg image "${image}" '.image == $image' "${PP_TMP}/staging.json" >/dev/null 2>&1 ||
    refuse "${staging_file} at ${dast_sha} names $(jq -c '.image' "${PP_TMP}/staging.json" 2>/dev/null || echo 'no image'), not ${image}: DAST scanned another image"
else
  refuse "${staging_file} does not exist at ${dast_sha}: no staging release that DAST could have scanned"
fi

# --- the build and DAST pipelines and their jobs ----------------------------------------------------------
for p in "${build_pipeline}" "${dast_pipeline}"; do
  api_get "${project}/pipelines/${p}" >"${PP_TMP}/pipeline-${p}.json"
  jq -e '.id | numbers' "${PP_TMP}/pipeline-${p}.json" >/dev/null ||
    die "GET /${project}/pipelines/${p} did not return a pipeline"
  api_paginate "${project}/pipelines/${p}/jobs?include_retried=false" >"${PP_TMP}/jobs-${p}.json"
  jq -e 'all(.[]; (.id | numbers) and (.name | strings) and (.status | strings))' "${PP_TMP}/jobs-${p}.json" >/dev/null ||
    die "GET /${project}/pipelines/${p}/jobs did not return a list of jobs"
done
jq -n --argjson b "${build_pipeline}" --argjson d "${dast_pipeline}" \
  --slurpfile bj "${PP_TMP}/jobs-${build_pipeline}.json" --slurpfile dj "${PP_TMP}/jobs-${dast_pipeline}.json" '
  def row($p): {pipeline_id: $p, name, stage, status, id, allow_failure, web_url, finished_at};
  [($bj[0][] | row($b)), ($dj[0][] | row($d))]' >"${CHECKS_OUT}"

pipeline_is() { # PIPELINE_ID SHA WHAT: refuses a pipeline that is not a default-branch push of SHA
  local got
  got=$(jq -r '"\(.sha) \(.ref) \(.tag) \(.source)"' "${PP_TMP}/pipeline-$1.json")
  [[ ${got} == "$2 ${CI_DEFAULT_BRANCH} false push" ]] ||
    refuse "$3 pipeline $1 is '${got}' (sha ref tag source), not a push of $2 to ${CI_DEFAULT_BRANCH}"
}
jobs_passed() { # PIPELINE_ID WHAT NAME...: refuses unless the latest attempt of each named job is success
  local p=$1 what=$2 bad_jobs
  shift 2
  bad_jobs=$(jq -r --args '
    (group_by(.name) | map(max_by(.id)) | map({(.name): .status}) | add // {}) as $latest
    | $ARGS.positional | map(select($latest[.] != "success") | "\(.) (\($latest[.] // "missing"))") | join(", ")' \
    "$@" <"${PP_TMP}/jobs-${p}.json")
  [[ -z ${bad_jobs} ]] || refuse "${what} pipeline ${p}: job(s) not successful: ${bad_jobs}"
}
pipeline_is "${build_pipeline}" "${sha}" build
pipeline_is "${dast_pipeline}" "${dast_sha}" DAST
jobs_passed "${build_pipeline}" build "${required[@]}"
jobs_passed "${dast_pipeline}" DAST "${DAST_JOB:-dast}"

# --- the build's artifacts --------------------------------------------------------------------------------
job_id() { # PIPELINE_ID NAME: the id of the job's latest attempt, or nothing
  jq -r --arg n "$2" 'map(select(.name == $n)) | max_by(.id) | .id // empty' "${PP_TMP}/jobs-$1.json"
}
build_job=$(job_id "${build_pipeline}" "${BUILD_JOB:-build}")
evidence_job=$(job_id "${build_pipeline}" "${EVIDENCE_JOB:-evidence}")
[[ -n ${build_job} && -n ${evidence_job} ]] ||
  die "build pipeline ${build_pipeline} has no ${BUILD_JOB:-build} or ${EVIDENCE_JOB:-evidence} job: no artifacts to verify"
api_get "${project}/jobs/${build_job}/artifacts/release-candidate.json" >"${PP_TMP}/candidate.json"
jq -e --arg sha "${sha}" --arg image "${image}" --arg p "${build_pipeline}" \
  '.sha == $sha and .image == $image and (.run_id | tostring) == $p' "${PP_TMP}/candidate.json" >/dev/null ||
  refuse "release-candidate.json of job ${build_job} names $(jq -c '{sha, image, run_id}' "${PP_TMP}/candidate.json" 2>/dev/null || echo 'nothing'), not ${sha} ${image} of pipeline ${build_pipeline}: production would get an image the build did not push and scan"
api_get "${project}/jobs/${build_job}/artifacts/sbom.spdx.json" >"${PP_TMP}/sbom.spdx.json"
api_get "${project}/jobs/${evidence_job}/artifacts/evidence-manifest.json" >"${PP_TMP}/evidence-manifest.json"
mv -f -- "${PP_TMP}/sbom.spdx.json" sbom.spdx.json
mv -f -- "${PP_TMP}/evidence-manifest.json" evidence-manifest.json

if ((refused)); then
  die "the promotion ${CI_COMMIT_SHA} of ${sha} is refused (see above)"
fi
echo "promotion ${CI_COMMIT_SHA}: ${image} built by pipeline ${build_pipeline} from ${sha}, DAST passed in pipeline ${dast_pipeline}, approved on !${iid} by $(jq -r '.approvals | map(.user) | join(", ")' "${APPROVALS_OUT}")"
