#!/usr/bin/env bash
# PP-BRANCH-01, PP-BRANCH-03 (verified again at deploy time), and on GitLab Free the production approval
# itself: every commit since the last production deploy reached the default branch through a merged merge
# request with MIN_APPROVALS fresh approvals by people who are neither its author nor the deployer, nor bots.
#
# "Fresh": the approver is in the MR's current approvals (GET .../approvals: approved_by; Premium resets them
# on push) AND their last "approved this merge request" system note is not older than the MR's last push (its
# newest diff version), OR every diff version since the one current at that note changes nothing: the newest
# version's diffs equal that version's (GET .../versions/:id: paths, modes, new/renamed/deleted flags and the
# diff text, hunk header line numbers aside). That is a rebase (merge_method ff rebases after the approval;
# GitLab keeps the approvals). A version GitLab did not collect whole, or a file whose changes it does not show
# (binary, too large, collapsed), cannot be compared: the approval stays stale. GitLab Free keeps approvals
# across pushes, so this is what refuses a stale approval there. An unapproval after the approval removes the
# approver from approved_by.
#
# Bots are not reviewers: an approver whose GET /users/:id says "bot": true (project and group access tokens,
# service accounts) is not counted.
#
# A rollback (PREVIOUS_SHA given, SHA an older commit on its first-parent history: a revert of the promotion,
# or an older pipeline's production job played again) passes with no merge request to check: every commit up
# to SHA was in what production ran, whose own deploy passed this gate.
#
# Environment:
#   CI_PROJECT_ID, CI_DEFAULT_BRANCH   this project and its default branch
#   SHA                 the commit to deploy (default CI_COMMIT_SHA)
#   PREVIOUS_SHA        the commit production runs (empty: first deploy, only SHA's own merge request is checked)
#   MIN_APPROVALS       approvals each merge request needs (>= 1)
#   GITLAB_USER_LOGIN   the deployer; never counts as an approver
#   MRS_OUT             file: a JSON array, one entry per merge request: {iid, web_url, author, merged_by,
#                       merged_at, head_sha, commits, approvals: [{user, approved_at}], not_counted: [..]};
#                       an approval older than the last push that a rebase carried over also names
#                       approved_version and latest_version (the diff versions compared). Written also when the
#                       gate fails (not on an API error); [] for a rollback
#   GITLAB_API_URL, PIPEPROOF_API_TOKEN   as for every script here (api.sh)
# Needs the history (GIT_DEPTH: 0). Exit: 0 every merge request approved, or a rollback; 1 a commit without a
# merged merge request, a merge request short of approvals, history rewritten (neither commit an ancestor of
# the other), a git or API error; 2 bad environment.
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
  git cat-file -e "${SHA}^{commit}" 2>/dev/null ||
    die "the commit to deploy ${SHA} is not in this clone: fetch the whole history (GIT_DEPTH: 0)"
  if git merge-base --is-ancestor "${PREVIOUS_SHA}" "${SHA}"; then
    git rev-list --first-parent "${PREVIOUS_SHA}..${SHA}" >"${PP_TMP}/commits" || die "git rev-list failed"
  elif git merge-base --is-ancestor "${SHA}" "${PREVIOUS_SHA}"; then
    # A rollback: production goes back to an older commit. Only one the default branch itself held (on the
    # first-parent history of what production runs), not a commit from inside a merged branch.
    git rev-list --first-parent "${PREVIOUS_SHA}" >"${PP_TMP}/first-parent" || die "git rev-list failed"
    grep -qx -- "${SHA}" "${PP_TMP}/first-parent" ||
      die "${SHA} is an ancestor of the production commit ${PREVIOUS_SHA} but not on its first-parent history (a commit from inside a merged branch, never the default branch's head): review it by hand"
    echo '[]' >"${MRS_OUT}"
    echo "rollback to ${SHA}, an older commit than the production commit ${PREVIOUS_SHA} and already in it: every change up to it was reviewed when production deployed it (that deploy passed this gate); no merge request to check"
    exit 0
  else
    die "neither ${PREVIOUS_SHA} (production) nor ${SHA} is an ancestor of the other: the history was rewritten, review it by hand"
  fi
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
mkdir -- "${PP_TMP}/users"
: >"${PP_TMP}/bots.jsonl"
cut -f 1 "${PP_TMP}/mr-of-commit.tsv" | sort -n -u >"${PP_TMP}/iids"

# A diff version as compared for freshness: what it changes, hunk header line numbers aside (a rebase moves
# them); `opaque` names what cannot be compared (a version not collected whole, a file whose changes GitLab
# does not show).
normalize='{
    id,
    opaque: ((if .state != "collected" then ["its diffs were not collected whole (state \(.state))"] else [] end)
      + (.diffs | map(select(.too_large == true or .collapsed == true or (.diff | type) != "string"
          or (.diff | startswith("Binary files "))) | "\(.new_path // .old_path) (binary, too large or collapsed)"))),
    diffs: (.diffs | map({old_path, new_path, a_mode, b_mode, new_file, renamed_file, deleted_file,
      diff: (if (.diff | type) == "string"
             then .diff | split("\n") | map(sub("^@@ -[0-9]+(,[0-9]+)? \\+[0-9]+(,[0-9]+)? @@"; "@@ @@")) | join("\n")
             else null end)})
      | sort_by(.old_path, .new_path, .diff))}'

fetch_version() { # IID VERSION_ID: the diff version, normalized, in ${PP_TMP}/versions/IID-ID.json (once)
  local out="${PP_TMP}/versions/$1-$2.json"
  [[ -s ${out} ]] && return 0
  mkdir -p -- "${PP_TMP}/versions"
  api_get "${project}/merge_requests/$1/versions/$2" >"${PP_TMP}/version.json"
  jq -e --argjson id "$2" '.id == $id and (.state | type) == "string" and (.diffs | type) == "array"
      and (.diffs | all(type == "object" and (.old_path | type) == "string" and (.new_path | type) == "string"))' \
    "${PP_TMP}/version.json" >/dev/null ||
    die "GET /${project}/merge_requests/$1/versions/$2 did not return that diff version with its diffs"
  jq -c "${normalize}" "${PP_TMP}/version.json" >"${out}"
}

while IFS= read -r iid; do
  base="${project}/merge_requests/${iid}"
  api_get "${project}/merge_requests/${iid}" >"${PP_TMP}/mr.json"
  api_get "${project}/merge_requests/${iid}/approvals" >"${PP_TMP}/approvals.json"
  api_paginate "${project}/merge_requests/${iid}/notes?sort=asc&order_by=created_at" >"${PP_TMP}/notes.json"
  api_paginate "${project}/merge_requests/${iid}/versions" >"${PP_TMP}/versions.json"
  jq -e '.iid and (.author.username | type == "string")' "${PP_TMP}/mr.json" >/dev/null ||
    die "GET /${base} did not return a merge request"
  jq -e '.approved_by | type == "array" and all(.user.id | type == "number") and all(.user.username | type == "string")' \
    "${PP_TMP}/approvals.json" >/dev/null ||
    die "GET /${base}/approvals did not return approved_by (each approver's id and username)"
  jq -e 'all(.id | type == "number") and all(.created_at | type == "string")' "${PP_TMP}/versions.json" >/dev/null ||
    die "GET /${base}/versions did not return diff versions (id, created_at)"

  # Bots are not reviewers: each approver's account, looked up once per run.
  while IFS= read -r uid; do
    [[ -s ${PP_TMP}/users/${uid}.json ]] && continue
    api_get "users/${uid}" >"${PP_TMP}/user.json"
    jq -e --argjson id "${uid}" '.id == $id and (.bot | type) == "boolean"' "${PP_TMP}/user.json" >/dev/null ||
      die "GET /users/${uid} did not say whether the approver is a bot"
    jq -c '{key: (.id | tostring), value: .bot}' "${PP_TMP}/user.json" >>"${PP_TMP}/bots.jsonl"
    mv -- "${PP_TMP}/user.json" "${PP_TMP}/users/${uid}.json"
  done < <(jq -r '.approved_by[].user.id' "${PP_TMP}/approvals.json")
  jq -s 'from_entries' "${PP_TMP}/bots.jsonl" >"${PP_TMP}/bots.json"

  # Each approver's last approval, and the diff version current when they gave it.
  jq -c --slurpfile approvals "${PP_TMP}/approvals.json" --slurpfile versions "${PP_TMP}/versions.json" '
    ($versions[0] | sort_by(.created_at, .id)) as $vs
    | {last_push: ($vs | last | .created_at // ""), latest: ($vs | last | .id // null),
       approvers: ($approvals[0].approved_by | map(.user) | unique_by(.username) | map({user: .username, id})),
       notes: (map(select(.system == true and .body == "approved this merge request"))
         | group_by(.author.username | ascii_downcase)
         | map({key: (.[0].author.username | ascii_downcase), value: (max_by(.created_at).created_at)}) | from_entries)}
    | .notes as $at
    | .approvers |= map(. + {approved_at: ($at[.user | ascii_downcase] // null)}
        | . + {version: (.approved_at as $t | if $t == null then null
                         else [$vs[] | select(.created_at <= $t)] | last | .id // null end)})
    | del(.notes)' "${PP_TMP}/notes.json" >"${PP_TMP}/approvers.json"

  # An approval older than the last push: compare the version it saw with the newest (once per version).
  : >"${PP_TMP}/same.jsonl"
  while IFS=$'\t' read -r seen latest; do
    fetch_version "${iid}" "${seen}"
    fetch_version "${iid}" "${latest}"
    jq -c -n --slurpfile a "${PP_TMP}/versions/${iid}-${seen}.json" --slurpfile b "${PP_TMP}/versions/${iid}-${latest}.json" '
      $a[0] as $a | $b[0] as $b
      | {key: ($a.id | tostring),
         value: (if ($a.opaque + $b.opaque) != [] then "cannot be compared: \(($a.opaque + $b.opaque) | unique | join(", "))"
                 elif $a.diffs != $b.diffs then "version \($b.id) changes what version \($a.id) (the one approved) changed"
                 else null end)}' >>"${PP_TMP}/same.jsonl"
  done < <(jq -r '.last_push as $p | .latest as $l
      | [.approvers[] | select(.approved_at != null and .approved_at < $p and .version != null and .version != $l) | .version]
      | unique[] | "\(.)\t\($l)"' "${PP_TMP}/approvers.json")
  jq -s 'from_entries' "${PP_TMP}/same.jsonl" >"${PP_TMP}/same.json"

  jq -c --slurpfile approvers "${PP_TMP}/approvers.json" --slurpfile bots "${PP_TMP}/bots.json" \
    --slurpfile same "${PP_TMP}/same.json" --arg deployer "${GITLAB_USER_LOGIN}" \
    --arg commits "$(awk -F '\t' -v i="${iid}" '$1 == i {print $2}' "${PP_TMP}/mr-of-commit.tsv")" '
    . as $mr
    | ($mr.author.username | ascii_downcase) as $author
    | $approvers[0].last_push as $last_push | $approvers[0].latest as $latest
    | ($approvers[0].approvers | map(. as $a | ($a.user | ascii_downcase) as $l
        | ($last_push != "" and $a.approved_at != null and $a.approved_at < $last_push) as $older
        | (if $older and $a.version != null and $a.version != $latest then ($a.version | tostring) as $k | $same[0] | (if has($k) then .[$k] else "version \($k) was not compared" end)
           else "" end) as $change
        | {user: $a.user, approved_at: $a.approved_at,
           carried: (if $older and $change == null then {approved_version: $a.version, latest_version: $latest} else null end),
           why: (if $l == $author then "is the author"
                 elif $l == ($deployer | ascii_downcase) then "runs the deploy"
                 elif $bots[0][$a.id | tostring] != false then "is a bot (an access token or service account), not a reviewer"
                 elif $a.approved_at == null then "no approval note"
                 elif $older and $a.version == null then "approved \($a.approved_at), before the last push \($last_push) and before any diff version"
                 elif $older and $change != null then "approved \($a.approved_at), before the last push \($last_push), and \($change)"
                 else null end)})) as $v
    | {iid: $mr.iid, web_url: $mr.web_url, author: $mr.author.username, merged_by: ($mr.merged_by.username // null),
       merged_at: $mr.merged_at, head_sha: $mr.sha, commits: ($commits | split("\n") | map(select(length > 0))),
       approvals: ($v | map(select(.why == null) | {user, approved_at} + (.carried // {}))),
       not_counted: ($v | map(select(.why != null) | "\(.user): \(.why)"))}' "${PP_TMP}/mr.json" >>"${PP_TMP}/records.jsonl"
  counted=$(tail -n 1 "${PP_TMP}/records.jsonl" | jq '.approvals | length')
  tail -n 1 "${PP_TMP}/records.jsonl" | jq -r --arg i "${iid}" '
    (.approvals[] | select(.latest_version) | "!\($i): \(.user) approved diff version \(.approved_version), counted for version \(.latest_version): the versions since change nothing (a rebase)"),
    (.not_counted[] | "not counted on !\($i): \(.)")'
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
