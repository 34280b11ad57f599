#!/usr/bin/env bash
# PP-EVID-01, PP-BRANCH-02: every change since the last production deploy came through a reviewed pull request.
# Branch protection can be bypassed or switched off for a while; this proves, at deploy time, what reached
# production and who approved it.
#
# Environment:
#   REPO            owner/name
#   SHA             the commit to deploy
#   PREVIOUS_SHA    the commit production runs now (last-production.sh); empty: only SHA is checked
#   DEFAULT_BRANCH  the branch pull requests merge into
#   MIN_APPROVALS   approvals each pull request needs (default 1)
#   PRS_OUT         file: JSON array, one object per pull request: number, title, html_url, author, merged_by,
#                   merged_at, merge_commit_sha, head_sha, base, commits (the first-parent commits it
#                   brought), reviews (every review: id, user, state, commit_id, submitted_at), approvers.
#                   Written also when the gate fails; not written on an API error (the record then says the
#                   list is missing rather than showing a partial one).
# Runs in a full-history checkout (actions/checkout with fetch-depth: 0).
# Approvers are the reviewers whose latest review is APPROVED on the pull request's final head commit, other
# than its author (see review_verdicts in api.sh).
# Exit: 0 every commit came through a pull request with enough approvals; 1 otherwise, or an API or git error;
# 2 bad environment. Step outputs: pull_requests (numbers, comma-separated).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=api.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"

require_env REPO SHA DEFAULT_BRANCH PRS_OUT
MIN_APPROVALS=${MIN_APPROVALS:-1}
require_uint MIN_APPROVALS
((MIN_APPROVALS >= 1)) || die "MIN_APPROVALS must be at least 1"
rm -f -- "${PRS_OUT}"

shallow=$(git rev-parse --is-shallow-repository) || die "not in a git checkout"
[[ ${shallow} == false ]] || die "the checkout is shallow: the review gate needs full history (actions/checkout with fetch-depth: 0)"
git cat-file -e "${SHA}^{commit}" 2>/dev/null || die "commit ${SHA} is not in this checkout"

if [[ -n ${PREVIOUS_SHA:-} ]]; then
  git cat-file -e "${PREVIOUS_SHA}^{commit}" 2>/dev/null ||
    die "the commit production runs, ${PREVIOUS_SHA}, is not in the history: history was rewritten (a force push), so the changes since it cannot be listed"
  git merge-base --is-ancestor "${PREVIOUS_SHA}" "${SHA}" ||
    die "the commit production runs, ${PREVIOUS_SHA}, is not an ancestor of ${SHA}: history was rewritten, so the changes since it cannot be listed"
  git rev-list --first-parent --reverse "${PREVIOUS_SHA}..${SHA}" >"${PP_TMP}/commits"
else
  echo "no earlier production deploy: checking ${SHA} only"
  git rev-parse --verify "${SHA}^{commit}" >"${PP_TMP}/commits"
fi
mapfile -t commits <"${PP_TMP}/commits"
echo "${#commits[@]} first-parent commit(s) to check on ${DEFAULT_BRANCH}"

failures=0
declare -A brought=()
numbers=()
for commit in "${commits[@]}"; do
  api_paginate "repos/${REPO}/commits/${commit}/pulls" >"${PP_TMP}/pulls.json"
  # The pull request that merged this commit; with a rebase merge several commits share one.
  number=$(jq -r --arg sha "${commit}" --arg base "${DEFAULT_BRANCH}" '
    map(select(.merged_at != null and .base.ref == $base))
    | (map(select(.merge_commit_sha == $sha)) + sort_by(.merged_at)) | .[0].number // empty' "${PP_TMP}/pulls.json")
  if [[ -z ${number} ]]; then
    gh_error "commit ${commit} reached ${DEFAULT_BRANCH} without a pull request"
    failures=$((failures + 1))
    continue
  fi
  [[ -n ${brought[${number}]+set} ]] || numbers+=("${number}")
  brought[${number}]+="${commit} "
done

: >"${PP_TMP}/prs.jsonl"
for number in "${numbers[@]}"; do
  api_get "repos/${REPO}/pulls/${number}" >"${PP_TMP}/pull.json"
  api_paginate "repos/${REPO}/pulls/${number}/reviews" >"${PP_TMP}/reviews.json"
  # One jq: the record, whether it is merged, how many approvals count and whose, why others do not.
  jq -r --slurpfile pull "${PP_TMP}/pull.json" --arg commits "${brought[${number}]}" "${REVIEW_VERDICTS_JQ}"'
    . as $reviews | $pull[0] as $p | review_verdicts($p; "") as $v
    | ({number: $p.number, title: $p.title, html_url: $p.html_url, author: $p.user.login,
        merged_by: $p.merged_by.login, merged_at: $p.merged_at, merge_commit_sha: $p.merge_commit_sha,
        head_sha: $p.head.sha, base: $p.base.ref, commits: ($commits | split(" ") | map(select(length > 0))),
        reviews: ($reviews | map({id, user: .user.login, state, commit_id, submitted_at})),
        approvers: ($v.approvals | map(.user))} | tojson),
      ($p.merged == true),
      ($v.approvals | length),
      ($v.approvals | map(.user) | join(", ")),
      ($v.not_counted[] | "not counted on pull request #\($p.number): \(.)")
  ' "${PP_TMP}/reviews.json" >"${PP_TMP}/verdict"
  {
    IFS= read -r record
    IFS= read -r merged
    IFS= read -r count
    IFS= read -r approvers
    mapfile -t notes
  } <"${PP_TMP}/verdict"
  printf '%s\n' "${record}" >>"${PP_TMP}/prs.jsonl"
  if ((${#notes[@]})); then printf '%s\n' "${notes[@]}"; fi

  if [[ ${merged} != true ]]; then
    gh_error "pull request #${number} is not merged, yet GitHub lists it for commits on ${DEFAULT_BRANCH}"
    failures=$((failures + 1))
  elif ((count < MIN_APPROVALS)); then
    gh_error "pull request #${number} has ${count} approval(s) on its final head commit by someone other than its author (${approvers:-nobody}); ${MIN_APPROVALS} required"
    failures=$((failures + 1))
  else
    echo "ok: pull request #${number} approved by ${approvers}"
  fi
done

jq -s '.' "${PP_TMP}/prs.jsonl" >"${PRS_OUT}"
gh_output pull_requests "$(
  IFS=,
  echo "${numbers[*]}"
)"
if ((failures)); then
  die "${failures} change(s) since ${PREVIOUS_SHA:-the first deploy} did not come through an approved pull request: production is blocked"
fi
echo "${#numbers[@]} pull request(s) since ${PREVIOUS_SHA:-the first deploy}, all approved"
