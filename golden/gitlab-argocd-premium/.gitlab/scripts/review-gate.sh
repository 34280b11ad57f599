#!/usr/bin/env bash
# PP-BRANCH-01, PP-BRANCH-03 (verified again at deploy time), and on GitLab Free the production approval
# itself: every commit since the last production deploy reached the default branch through a merged merge
# request with MIN_APPROVALS fresh approvals by people who are neither its author nor the deployer.
#
# "Fresh": the approver is in the MR's current approvals (GET .../approvals: approved_by; Premium resets them
# on push) AND their last "approved this merge request" system note is not older than the MR's last push (its
# newest diff version). GitLab Free keeps approvals across pushes, so this is what refuses a stale approval
# there. An unapproval after the approval removes the approver from approved_by.
#
# Environment:
#   CI_PROJECT_ID, CI_DEFAULT_BRANCH   this project and its default branch
#   SHA                 the commit to deploy (default CI_COMMIT_SHA)
#   PREVIOUS_SHA        the commit production runs (empty: first deploy, only SHA's own merge request is checked)
#   MIN_APPROVALS       approvals each merge request needs (>= 1)
#   GITLAB_USER_LOGIN   the deployer; never counts as an approver
#   MRS_OUT             file: a JSON array, one entry per merge request: {iid, web_url, author, merged_by,
#                       merged_at, head_sha, commits, approvals: [{user, approved_at}], not_counted: [..]};
#                       written also when the gate fails (not on an API error)
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Needs the history (GIT_DEPTH: 0). Exit: 0 every merge request approved; 1 a commit without a merged merge
# request, a merge request short of approvals, a git or API error; 2 bad environment.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

SHA=${SHA:-${CI_COMMIT_SHA:-}}
require_env CI_PROJECT_ID CI_DEFAULT_BRANCH SHA MIN_APPROVALS GITLAB_USER_LOGIN MRS_OUT
require_uint CI_PROJECT_ID
require_uint MIN_APPROVALS
((MIN_APPROVALS >= 1)) || {
  error "review-gate.sh: MIN_APPROVALS must be at least 1"
  exit 2
}
[[ ${SHA} =~ ^[0-9a-f]{40}$ ]] || {
  error "review-gate.sh: SHA must be a 40-character commit SHA, got '${SHA}'"
  exit 2
}
[[ -z ${PREVIOUS_SHA:-} || ${PREVIOUS_SHA} =~ ^[0-9a-f]{40}$ ]] || {
  error "review-gate.sh: PREVIOUS_SHA must be empty or a 40-character commit SHA, got '${PREVIOUS_SHA}'"
  exit 2
}
rm -f -- "${MRS_OUT}"
project="projects/${CI_PROJECT_ID}"

if [[ -n ${PREVIOUS_SHA:-} ]]; then
  git cat-file -e "${PREVIOUS_SHA}^{commit}" 2>/dev/null ||
    die "the production commit ${PREVIOUS_SHA} is not in this clone: fetch the whole history (GIT_DEPTH: 0)"
  git merge-base --is-ancestor "${PREVIOUS_SHA}" "${SHA}" ||
    die "the production commit ${PREVIOUS_SHA} is not an ancestor of ${SHA}: the history was rewritten, review it by hand"
  git rev-list --first-parent "${PREVIOUS_SHA}..${SHA}" >"${PP_TMP}/commits" || die "git rev-list failed"
else
  printf '%s\n' "${SHA}" >"${PP_TMP}/commits"
fi
[[ -s ${PP_TMP}/commits ]] || { echo '[]' >"${MRS_OUT}"; echo "no commit since production ${PREVIOUS_SHA}: nothing to review"; exit 0; }

# Each commit's merged merge request into the default branch (the API lists every MR that contains it).
: >"${PP_TMP}/mr-of-commit.tsv"
orphans=()
while IFS= read -r commit; do
  api_paginate "${project}/repository/commits/${commit}/merge_requests" >"${PP_TMP}/c.json"
  iid=$(jq -r --arg b "${CI_DEFAULT_BRANCH}" \
    'map(select(.state == "merged" and .target_branch == $b)) | sort_by(.iid) | .[0].iid // empty' "${PP_TMP}/c.json")
  if [[ -z ${iid} ]]; then orphans+=("${commit}"); else printf '%s\t%s\n' "${iid}" "${commit}" >>"${PP_TMP}/mr-of-commit.tsv"; fi
done <"${PP_TMP}/commits"

: >"${PP_TMP}/records.jsonl"
short=()
cut -f 1 "${PP_TMP}/mr-of-commit.tsv" | sort -n -u >"${PP_TMP}/iids"
while IFS= read -r iid; do
  base="${project}/merge_requests/${iid}"
  api_get "${project}/merge_requests/${iid}" >"${PP_TMP}/mr.json"
  api_get "${project}/merge_requests/${iid}/approvals" >"${PP_TMP}/approvals.json"
  api_paginate "${project}/merge_requests/${iid}/notes?sort=asc&order_by=created_at" >"${PP_TMP}/notes.json"
  api_paginate "${project}/merge_requests/${iid}/versions" >"${PP_TMP}/versions.json"
  jq -e '.iid and (.author.username | type == "string")' "${PP_TMP}/mr.json" >/dev/null ||
    die "GET /${base} did not return a merge request"
  jq -e '.approved_by | type == "array"' "${PP_TMP}/approvals.json" >/dev/null ||
    die "GET /${base}/approvals did not return approved_by"
  jq -c --slurpfile approvals "${PP_TMP}/approvals.json" --slurpfile notes "${PP_TMP}/notes.json" \
    --slurpfile versions "${PP_TMP}/versions.json" --arg deployer "${GITLAB_USER_LOGIN}" \
    --arg commits "$(awk -F '\t' -v i="${iid}" '$1 == i {print $2}' "${PP_TMP}/mr-of-commit.tsv")" '
    . as $mr
    | ($mr.author.username | ascii_downcase) as $author
    | ($versions[0] | map(.created_at) | max // "") as $last_push
    | ($notes[0] | map(select(.system == true and .body == "approved this merge request"))
        | group_by(.author.username | ascii_downcase) | map({key: (.[0].author.username | ascii_downcase), value: (max_by(.created_at).created_at)})
        | from_entries) as $approved_at
    | ($approvals[0].approved_by | map(.user.username) | unique) as $approvers
    | ($approvers | map(. as $u | ($u | ascii_downcase) as $l | {user: $u, approved_at: ($approved_at[$l] // null),
        why: (if $l == $author then "is the author"
              elif $l == ($deployer | ascii_downcase) then "runs the deploy"
              elif ($approved_at[$l] // null) == null then "no approval note"
              elif $last_push != "" and $approved_at[$l] < $last_push then "approved \($approved_at[$l]), before the last push \($last_push)"
              else null end)})) as $v
    | {iid: $mr.iid, web_url: $mr.web_url, author: $mr.author.username, merged_by: ($mr.merged_by.username // null),
       merged_at: $mr.merged_at, head_sha: $mr.sha, commits: ($commits | split("\n") | map(select(length > 0))),
       approvals: ($v | map(select(.why == null) | {user, approved_at})),
       not_counted: ($v | map(select(.why != null) | "\(.user): \(.why)"))}' "${PP_TMP}/mr.json" >>"${PP_TMP}/records.jsonl"
  counted=$(tail -n 1 "${PP_TMP}/records.jsonl" | jq '.approvals | length')
  tail -n 1 "${PP_TMP}/records.jsonl" | jq -r --arg i "${iid}" '.not_counted[] | "not counted on !\($i): \(.)"'
  if ((counted < MIN_APPROVALS)); then short+=("!${iid} (${counted})"); fi
done <"${PP_TMP}/iids"
jq -s . "${PP_TMP}/records.jsonl" >"${MRS_OUT}"

if ((${#orphans[@]})); then
  die "commit(s) ${orphans[*]} reached ${CI_DEFAULT_BRANCH} without a merged merge request"
fi
if ((${#short[@]})); then
  die "merge request(s) ${short[*]} have fewer than ${MIN_APPROVALS} fresh approval(s) by someone other than the author and ${GITLAB_USER_LOGIN}"
fi
echo "$(jq length "${MRS_OUT}") merge request(s) since ${PREVIOUS_SHA:-the start} approved: $(jq -r 'map("!\(.iid) by \(.approvals | map(.user) | join(", "))") | join("; ")' "${MRS_OUT}")"
