#!/usr/bin/env bash
# GitHub REST helpers for the scripts next to this file. Source it, never run it:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/api.sh"
#
#   api_get PATH             one GET; prints the JSON body
#   api_paginate PATH [KEY]  every page (Link rel="next", page numbers or cursors); prints one JSON array: the
#                            pages' arrays, or their .KEY arrays (check_runs) joined
#   api_page PATH FILE       one page into FILE; sets API_NEXT to the next page's URL ('' on the last page)
#   api_send METHOD PATH FILE  one POST/PUT/PATCH with FILE as the JSON body; prints the JSON answer. Never
#                            retried: the request is not idempotent, so a failure fails (closed) at once
#   api_app_token APP_ID PERMISSIONS_JSON  replace GITHUB_TOKEN with a GitHub App installation token for REPO
#                            (the app's key in APP_PRIVATE_KEY), limited to PERMISSIONS_JSON; masked in logs
#
# PATH is relative to the API (repos/OWNER/NAME/...) or a full URL under it. Every function fails closed: on
# any error it prints one ::error:: line (method, path, HTTP status, the API's message) and returns 1, so
# `x=$(api_get ...)` stops a script running under `set -e`. Nothing else in these scripts calls curl.
#
# Environment:
#   GITHUB_API_URL          https://api.github.com, or https://HOST/api/v3 on GHES (GitHub sets it on runners)
#   GITHUB_TOKEN            sent as a header through curl's stdin, never on a command line (ps) or in a URL;
#                           never sent to a URL outside GITHUB_API_URL (a Link header cannot redirect it)
#   PIPEPROOF_API_TIMEOUT   seconds one request may take (default 30)
#   PIPEPROOF_API_ATTEMPTS  tries per request on 429, 5xx, rate-limit 403 and network errors (default 4)
#   PIPEPROOF_API_MAX_WAIT  seconds the waits between tries of one request may add up to (default 60)
#   PIPEPROOF_API_BACKOFF   first wait when the API names none, doubled per try (default 2)
#   PIPEPROOF_API_MAX_PAGES pages api_paginate follows before it gives up (default 1000)
set -euo pipefail
# error, die, require_env, require_uint: scripts/ is at the repository root in every render.
# shellcheck source-path=SCRIPTDIR source=../../scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/../../scripts/lib.sh"

PP_TMP=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/pipeproof.XXXXXX")
trap 'rm -rf -- "${PP_TMP}"' EXIT
API_NEXT=''

gh_error() { error "$@"; } # the name these scripts call

gh_output() { # KEY VALUE: a step output, when the runner gave us a file for them
  if [[ -n ${GITHUB_OUTPUT:-} ]]; then
    [[ $2 != *$'\n'* ]] || die "step output $1 must be one line"
    printf '%s=%s\n' "$1" "$2" >>"${GITHUB_OUTPUT}"
  fi
}

api__setup() {
  local n
  if [[ ! ${GITHUB_API_URL:-} =~ ^https?://[^/]+ ]]; then
    gh_error "GITHUB_API_URL must be the API's URL (https://api.github.com or https://HOST/api/v3), got '${GITHUB_API_URL:-}'"
    return 1
  fi
  # curl's config syntax would need " and \ escaped; no GitHub token contains them, or whitespace.
  if [[ -z ${GITHUB_TOKEN:-} || ${GITHUB_TOKEN} =~ [[:space:][:cntrl:]\"\\] ]]; then
    gh_error "GITHUB_TOKEN is missing or is not a token"
    return 1
  fi
  for n in PIPEPROOF_API_TIMEOUT PIPEPROOF_API_ATTEMPTS PIPEPROOF_API_MAX_WAIT PIPEPROOF_API_BACKOFF PIPEPROOF_API_MAX_PAGES; do
    if [[ -n ${!n:-} && ! ${!n} =~ ^[0-9]+$ ]]; then
      gh_error "${n} must be a whole number of seconds or tries, got '${!n}'"
      return 1
    fi
  done
}

api__url() { # PATH: the full URL; refuses one outside the API, so the token goes nowhere else
  local path=$1 base=${GITHUB_API_URL%/}
  case ${path} in
    "${base}"/*) printf '%s\n' "${path}" ;;
    *://*)
      gh_error "refusing to send the token to ${path%%\?*}: it is outside GITHUB_API_URL (${base})"
      return 1
      ;;
    *) printf '%s/%s\n' "${base}" "${path#/}" ;;
  esac
}

api__headers() { # FILE: sets API_LINK, API_RETRY_AFTER, API_REMAINING, API_RESET from a response's headers
  local line name value
  API_LINK='' API_RETRY_AFTER='' API_REMAINING='' API_RESET=''
  while IFS= read -r line || [[ -n ${line} ]]; do
    line=${line%$'\r'}
    name=${line%%:*}
    value=${line#*:}
    value=${value#"${value%%[![:space:]]*}"}
    case ${name,,} in
      link) API_LINK=${value} ;;
      retry-after) API_RETRY_AFTER=${value} ;;
      x-ratelimit-remaining) API_REMAINING=${value} ;;
      x-ratelimit-reset) API_RESET=${value} ;;
      *) ;;
    esac
  done <"$1"
}

api__next() { # the URL of rel="next" in API_LINK, or nothing
  local re='<([^>]*)>;[[:space:]]*rel="next"'
  if [[ ${API_LINK} =~ ${re} ]]; then printf '%s\n' "${BASH_REMATCH[1]}"; fi
}

api__message() { # BODY_FILE: the API's message, or the start of a body that is not JSON
  local msg
  msg=$(jq -r 'if type == "object" then (.message // empty) else empty end' "$1" 2>/dev/null) || msg=''
  [[ -n ${msg} ]] || msg=$(head -c 200 "$1" | tr '\r\n' '  ')
  printf '%s\n' "${msg:-(empty body)}"
}

api__curl() { # URL BODY_FILE HEADERS_FILE: prints the HTTP status; the token reaches curl on stdin only
  printf 'header = "Authorization: Bearer %s"\n' "${GITHUB_TOKEN}" |
    curl --config - --silent --show-error --globoff \
      --connect-timeout 10 --max-time "${PIPEPROOF_API_TIMEOUT:-30}" \
      --header 'Accept: application/vnd.github+json' --header 'X-GitHub-Api-Version: 2022-11-28' \
      --user-agent pipeproof-scripts --dump-header "$3" --output "$2" --write-out '%{http_code}' -- "$1"
}

# GitHub's advice: on 403/429 with x-ratelimit-remaining 0 wait until x-ratelimit-reset; with retry-after wait
# that long; on 5xx back off. Waits are capped so a gate fails rather than hanging the deploy.
api__fetch() { # URL BODY_FILE [JQ_TEST]: GET with bounded retries; headers land in BODY_FILE.headers
  local url=$1 body=$2 test=${3:-}
  local headers="$2.headers" err="$2.err" shown="GET ${1#"${GITHUB_API_URL%/}"}"
  local attempts=${PIPEPROOF_API_ATTEMPTS:-4} budget=${PIPEPROOF_API_MAX_WAIT:-60} backoff=${PIPEPROOF_API_BACKOFF:-2}
  local attempt=0 waited=0 code detail delay retry_after remaining reset
  shown=${shown%%\?*}
  while :; do
    attempt=$((attempt + 1))
    : >"${headers}"
    detail=''
    if ! code=$(api__curl "${url}" "${body}" "${headers}" 2>"${err}"); then
      code=000
      detail="no response: $(tail -n 1 "${err}")"
    fi
    if [[ ${code} == 2[0-9][0-9] ]]; then
      # An empty body is never a GitHub answer to these GETs (and jq 1.6 would pass it with -e).
      if [[ ! -s ${body} ]] || { [[ -n ${test} ]] && ! jq -e "${test}" "${body}" >/dev/null 2>&1; }; then
        gh_error "GitHub API ${shown} failed: HTTP ${code} with a body that is not the JSON expected"
        return 1
      fi
      api__headers "${headers}"
      return 0
    fi
    [[ -n ${detail} ]] || detail="HTTP ${code}: $(api__message "${body}")"
    api__headers "${headers}"
    retry_after=${API_RETRY_AFTER} remaining=${API_REMAINING} reset=${API_RESET}
    delay=''
    case ${code} in
      000 | 429 | 500 | 502 | 503 | 504) delay=$((backoff << (attempt - 1))) ;;
      403) if [[ ${remaining} == 0 || -n ${retry_after} ]]; then delay=$((backoff << (attempt - 1))); fi ;;
    esac
    if [[ -z ${delay} ]]; then
      gh_error "GitHub API ${shown} failed: ${detail}"
      return 1
    fi
    if [[ ${retry_after} =~ ^[0-9]+$ ]]; then
      delay=${retry_after}
    elif [[ ${remaining} == 0 && ${reset} =~ ^[0-9]+$ ]]; then
      delay=$((reset - $(date +%s)))
      ((delay > 0)) || delay=0
    fi
    if ((attempt >= attempts)); then
      gh_error "GitHub API ${shown} failed after ${attempt} attempts: ${detail}"
      return 1
    fi
    if ((waited + delay > budget)); then
      gh_error "GitHub API ${shown} failed: ${detail}; a retry would have to wait ${delay} s, more than the $((budget - waited)) s left to wait (PIPEPROOF_API_MAX_WAIT)"
      return 1
    fi
    printf 'GitHub API %s: %s; retrying in %s s (attempt %s of %s)\n' "${shown}" "${detail}" "${delay}" "$((attempt + 1))" "${attempts}" >&2
    sleep "${delay}"
    waited=$((waited + delay))
  done
}

api_get() { # PATH: one GET; prints the JSON body
  local url body
  api__setup || return 1
  url=$(api__url "$1") || return 1
  body="${PP_TMP}/get.${BASHPID}.${RANDOM}"
  api__fetch "${url}" "${body}" true || return 1
  cat -- "${body}"
}

api_page() { # PATH FILE [JQ_TEST]: one page into FILE, checked with JQ_TEST when given; sets API_NEXT
  # (call it outside $(...), or API_NEXT is lost)
  local url
  API_NEXT=''
  api__setup || return 1
  url=$(api__url "$1") || return 1
  api__fetch "${url}" "$2" "${3:-}" || return 1
  API_NEXT=$(api__next)
  if [[ -n ${API_NEXT} ]]; then
    api__url "${API_NEXT}" >/dev/null || return 1
  fi
}

api_paginate() { # PATH [KEY]: every page; prints one JSON array
  local path=$1 key=${2:-} dir page count=0 max=${PIPEPROOF_API_MAX_PAGES:-1000} seen=' '
  case ${path} in
    *'?per_page='* | *'&per_page='*) ;;
    *'?'*) path="${path}&per_page=100" ;;
    *) path="${path}?per_page=100" ;;
  esac
  dir="${PP_TMP}/pages.${BASHPID}.${RANDOM}"
  mkdir -- "${dir}"
  while [[ -n ${path} ]]; do
    count=$((count + 1))
    if ((count > max)); then
      gh_error "GitHub API GET ${1%%\?*}: more than ${max} pages (PIPEPROOF_API_MAX_PAGES); refusing a partial list"
      return 1
    fi
    printf -v page '%s/%06d.json' "${dir}" "${count}"
    api_page "${path}" "${page}" || return 1
    if [[ -n ${API_NEXT} && ${seen} == *" ${API_NEXT} "* ]]; then
      gh_error "GitHub API GET ${1%%\?*}: the next-page link of page ${count} points back to an earlier page"
      return 1
    fi
    seen+="${API_NEXT} "
    path=${API_NEXT}
  done
  # Every page checked at once: one jq, however many pages.
  if ! jq -s --arg k "${key}" '
      to_entries
      | map(.key as $n | .value | if $k == "" then . elif type == "object" then .[$k] else null end
            | if type == "array" then . else error("page \($n + 1) is not \(if $k == "" then "" else "an object with " end)a JSON array\(if $k == "" then "" else " .\($k)" end)") end)
      | add // []' "${dir}"/*.json 2>"${dir}/err"; then
    gh_error "GitHub API GET ${1%%\?*}: $(sed 's/^jq: error ([^)]*): //' "${dir}/err" | head -n 1)"
    return 1
  fi
}

api__send() { # METHOD URL BODY_FILE OUT_FILE: prints the HTTP status; the token reaches curl on stdin only
  printf 'header = "Authorization: Bearer %s"\n' "${GITHUB_TOKEN}" |
    curl --config - --silent --show-error --globoff \
      --connect-timeout 10 --max-time "${PIPEPROOF_API_TIMEOUT:-30}" \
      --header 'Accept: application/vnd.github+json' --header 'X-GitHub-Api-Version: 2022-11-28' \
      --header 'Content-Type: application/json' --user-agent pipeproof-scripts \
      --request "$1" --data-binary "@$3" --output "$4" --write-out '%{http_code}' -- "$2"
}

api_send() { # METHOD PATH BODY_FILE: one request with a JSON body; prints the JSON answer
  local method=$1 url out code shown
  api__setup || return 1
  url=$(api__url "$2") || return 1
  shown="${method} ${url#"${GITHUB_API_URL%/}"}"
  shown=${shown%%\?*}
  out="${PP_TMP}/send.${BASHPID}.${RANDOM}"
  if ! code=$(api__send "${method}" "${url}" "$3" "${out}" 2>"${out}.err"); then
    gh_error "GitHub API ${shown} failed: no response: $(tail -n 1 "${out}.err")"
    return 1
  fi
  if [[ ${code} != 2[0-9][0-9] ]]; then
    gh_error "GitHub API ${shown} failed: HTTP ${code}: $(api__message "${out}")"
    return 1
  fi
  if ! jq -e 'type == "object"' "${out}" >/dev/null 2>&1; then
    gh_error "GitHub API ${shown} failed: HTTP ${code} with a body that is not the JSON expected"
    return 1
  fi
  cat -- "${out}"
}

api__b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }

# A pull request or push made with the workflow's own token starts no workflow, so the required checks of a
# pull request the pipeline opens would never report; an installation token of a GitHub App does start them.
api_app_token() { # APP_ID PERMISSIONS_JSON: sets GITHUB_TOKEN to an installation token for REPO
  local app=$1 permissions=$2 now header payload signature jwt installation token key
  require_env APP_PRIVATE_KEY REPO
  [[ ${app} =~ ^[1-9][0-9]{0,19}$ ]] || { gh_error "the GitHub App id must be a number, got '${app}'"; return 1; }
  key="${PP_TMP}/app-key.pem"
  (umask 077 && printf '%s\n' "${APP_PRIVATE_KEY}" >"${key}")
  now=$(date +%s)
  header=$(printf '{"alg":"RS256","typ":"JWT"}' | api__b64url)
  # GitHub allows 10 minutes; iat 60 s early for clock drift.
  payload=$(jq -cn --argjson iat "$((now - 60))" --argjson exp "$((now + 540))" --arg iss "${app}" \
    '{iat: $iat, exp: $exp, iss: $iss}' | api__b64url)
  if ! signature=$(printf '%s.%s' "${header}" "${payload}" | openssl dgst -sha256 -sign "${key}" -binary 2>/dev/null | api__b64url) ||
    [[ -z ${signature} ]]; then
    rm -f -- "${key}"
    gh_error "APP_PRIVATE_KEY is not the GitHub App's private key (PEM): cannot sign the app's token request"
    return 1
  fi
  rm -f -- "${key}"
  jwt="${header}.${payload}.${signature}"
  installation=$(GITHUB_TOKEN=${jwt} api_get "repos/${REPO}/installation") || return 1
  installation=$(jq -er '.id | numbers' <<<"${installation}") ||
    { gh_error "GET /repos/${REPO}/installation: no installation id (is the app installed on ${REPO}?)"; return 1; }
  jq -n --arg repo "${REPO#*/}" --argjson permissions "${permissions}" \
    '{repositories: [$repo], permissions: $permissions}' >"${PP_TMP}/token-request.json"
  token=$(GITHUB_TOKEN=${jwt} api_send POST "app/installations/${installation}/access_tokens" "${PP_TMP}/token-request.json") ||
    return 1
  token=$(jq -er '.token | strings' <<<"${token}") ||
    { gh_error "POST /app/installations/${installation}/access_tokens: no token in the answer"; return 1; }
  printf '::add-mask::%s\n' "${token}"
  GITHUB_TOKEN=${token}
}

# Which reviews approve a pull request (approval-check.sh promotion mode and review-gate.sh): each reviewer's
# latest review that changes state (APPROVED, CHANGES_REQUESTED, DISMISSED: GitHub turns a dismissed approval
# into DISMISSED; COMMENTED leaves an approval standing; PENDING is an unsubmitted draft), counted only when it
# is APPROVED on the pull request's final head commit and the reviewer is neither its author nor $exclude.
# A jq definition: prepend it to a program, apply review_verdicts(PULL; EXCLUDE) to the reviews array.
# shellcheck disable=SC2016,SC2034 # jq's $variables, not the shell's; used by the scripts that source this
REVIEW_VERDICTS_JQ='
def review_verdicts($pr; $exclude):
  ($pr.user.login // "" | ascii_downcase) as $author
  | map(select(.state == "APPROVED" or .state == "CHANGES_REQUESTED" or .state == "DISMISSED")
        | .login = (.user.login // "ghost"))
  | group_by(.login | ascii_downcase) | map(max_by(.id))
  | map(. + {why: (
      if .state != "APPROVED" then "latest review is \(.state)"
      elif .commit_id != $pr.head.sha then "approved \(.commit_id), not the final head \($pr.head.sha)"
      elif (.login | ascii_downcase) == $author then "is the author"
      elif $exclude != "" and (.login | ascii_downcase) == ($exclude | ascii_downcase) then "triggered the deploy"
      else null end)})
  | {approvals: map(select(.why == null) | {user: .login, state, commit_id, submitted_at}),
     not_counted: map(select(.why != null) | "\(.login): \(.why)")};
'
