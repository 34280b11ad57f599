#!/usr/bin/env bash
# PP-SCAN-09: applies .zap/rules.tsv to ZAP's report, after the scan (the scan itself never fails the job):
#   scripts/zap-gate.sh RULES_FILE REPORT_JSON TARGET_URL
# - an alert with riskcode 3 (High) blocks, whatever its rule says;
# - a FAIL rule blocks on any alert of that rule, at any risk;
# - WARN and INFO rules, and alerts of rules not listed, only annotate (::warning::);
# - an IGNORE line fails the gate: ZAP switches an IGNORE rule off, so it never runs and a finding can never be
#   seen, not even a high one. Use WARN instead (the rule keeps running and only annotates), and record the
#   accepted risk as a waiver in compliance/risk-acceptance.yml;
# - a malformed rules line fails the gate (one a line: rule id, tab, IGNORE|INFO|WARN|FAIL, tab, name; # starts
#   a comment);
# - a missing, empty or unparsable report, or one whose sites do not include TARGET_URL's host (ZAP scanned
#   something else), fails closed.
# ZAP's traditional JSON report (-J): site[].@name, site[].alerts[].{pluginid, riskcode "0".."3", alert, count}.
# Prints a summary table, and appends it to $GITHUB_STEP_SUMMARY when set.
# Exit: 0 nothing blocks; 1 blocked, or a bad rules file or report; 2 bad arguments.
set -euo pipefail

annotate() { # LEVEL MESSAGE: a workflow command, % CR LF escaped
  local msg=$2
  msg=${msg//'%'/%25}
  msg=${msg//$'\r'/%0D}
  msg=${msg//$'\n'/%0A}
  printf '::%s::%s\n' "$1" "${msg}" >&2
}

if (($# != 3)); then
  annotate error 'usage: zap-gate.sh RULES_FILE REPORT_JSON TARGET_URL'
  exit 2
fi
rules=$1 report=$2 target=$3
host=${target#*://}
host=${host%%[/?#]*}
host=${host##*@}
[[ ${host} == \[* ]] && host=${host%%]*}] || host=${host%%:*}
host=${host,,}
if [[ ${target} != *://* || -z ${host} ]]; then
  annotate error "zap-gate.sh: TARGET_URL must be a URL such as https://staging.example.com, got '${target}'"
  exit 2
fi
if [[ ! -f ${rules} ]]; then
  annotate error "ZAP gate: rules file ${rules} is missing"
  exit 1
fi
if [[ ! -s ${report} ]]; then
  annotate error "ZAP gate: report ${report} is missing or empty: the scan did not run or did not write it"
  exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf -- "${tmp}"' EXIT
if ! jq -c . "${report}" >"${tmp}/report.json" 2>"${tmp}/err"; then
  annotate error "ZAP gate: report ${report} is not JSON: $(head -n 1 "${tmp}/err")"
  exit 1
fi

# One verdict: rules-file errors, IGNORE lines, report errors, and every alert with what it does.
jq -n --rawfile text "${rules}" --slurpfile report "${tmp}/report.json" --arg host "${host}" '
  def hostof: sub("^[A-Za-z][A-Za-z0-9+.-]*://"; "") | sub("[/?#].*$"; "") | sub("^.*@"; "")
              | (if startswith("[") then sub("].*$"; "]") else sub(":[0-9]*$"; "") end) | ascii_downcase;
  def risknames: {"0": "Informational", "1": "Low", "2": "Medium", "3": "High"};
  ($text | split("\n") | to_entries | map({line: (.key + 1), text: (.value | sub("\r$"; ""))})
   | map(select(.text | test("^\\s*(#.*)?$") | not))
   | map(.line as $n | (.text | split("\t")) as $f
     | if ($f | length) != 3 then {line: $n, error: "expected 3 tab-separated fields (rule id, action, name), found \($f | length)"}
       elif ($f[0] | test("^[0-9]+$") | not) then {line: $n, error: "rule id \($f[0] | tojson) is not a number"}
       elif (any(["IGNORE", "INFO", "WARN", "FAIL"][]; . == $f[1]) | not) then {line: $n, error: "action \($f[1] | tojson) is not IGNORE, INFO, WARN or FAIL"}
       elif ($f[2] | test("\\S") | not) then {line: $n, error: "the rule name is empty"}
       else {line: $n, id: $f[0], action: $f[1], name: $f[2]} end)) as $parsed
  | ($parsed | map(select(.error == null))) as $rules
  | ($rules | group_by(.id) | map(select(length > 1))
     | map({line: .[1].line, error: "rule \(.[0].id) is listed again (first on line \(.[0].line))"})) as $dupes
  | ($rules | map({key: .id, value: .}) | from_entries) as $byid
  | (try (
      $report[0] | if type != "object" then error("the report is not a JSON object") else . end
      | .site | if type == "object" then [.] elif type == "array" then . else error("the report has no site list") end
      | map(if (.["@name"] | type) != "string" then error("a site has no @name")
            elif (.alerts | type) != "array" then error("site \(.["@name"]) has no alerts list") else . end
        | .["@name"] as $site
        | {name: $site, host: (.["@host"] // ($site | hostof) | ascii_downcase),
           alerts: (.alerts | map(. as $a
             | if ((.pluginid | tostring) | test("^[0-9]+$") | not) then error("an alert on \($site) has no numeric pluginid")
             elif (any(["0", "1", "2", "3"][]; . == ($a.riskcode | tostring)) | not) then error("alert \(.pluginid) on \($site) has riskcode \(.riskcode | tojson), not 0 to 3")
             else {site: $site, id: (.pluginid | tostring), risk: (.riskcode | tostring), alert: (.alert // .name // ""),
                   count: ((.count // (.instances | length? // 0)) | tostring)} end))})
      | {sites: .}) catch {error: .}) as $r
  | {rule_errors: ($parsed | map(select(.error != null)) + $dupes),
     ignored: ($rules | map(select(.action == "IGNORE"))),
     report_error: $r.error,
     sites: ($r.sites // [] | map(.name)),
     host_found: ($r.sites // [] | any(.[]; .host == $host or (.name | hostof) == $host)),
     alerts: ($r.sites // [] | map(.alerts[]) | map(
       ($byid[.id].action // "WARN") as $action
       | . + {riskname: risknames[.risk], rule: ($byid[.id].action // "(not listed: WARN)"), action: $action,
              blocks: (.risk == "3" or $action == "FAIL"),
              why: (if .risk == "3" then "High risk blocks whatever the rule says"
                    elif $action == "FAIL" then "its rule is FAIL" else null end)})
       | sort_by(-(.risk | tonumber), .id))}
' >"${tmp}/verdict.json"

# Everything to print, one tagged line each: E error, W warning, T table row, M summary row, B blocking count.
jq -r --arg rules "${rules}" --arg report "${report}" --arg host "${host}" --arg target "${target}" '
  def risk: {"0": "Informational", "1": "Low", "2": "Medium", "3": "High"}[.];
  (.rule_errors | sort_by(.line)[] | "E\tZAP gate: \($rules): line \(.line): \(.error)"),
  (.ignored[] | "E\tZAP gate: \($rules): line \(.line): rule \(.id) (\(.name)) is IGNORE, and ZAP switches an IGNORE rule off: it never runs, so not even a high-risk finding can be seen. Use WARN instead (the rule keeps running and only annotates), and record the accepted risk as a waiver in compliance/risk-acceptance.yml"),
  if .report_error then "E\tZAP gate: report \($report) cannot be read: \(.report_error)", "B\t-1"
  elif .host_found | not then
    "E\tZAP gate: report \($report) holds no site on \($host) (it has: \(.sites | if length == 0 then "none" else join(", ") end)): it is not a scan of \($target)", "B\t-1"
  else
    (.alerts[] | if .blocks then "E\tZAP: \(.risk | risk) alert \(.id) \(.alert) (\(.count)x on \(.site)) blocks: \(.why)"
                 else "W\tZAP: \(.risk | risk) alert \(.id) \(.alert) (\(.count)x on \(.site)), rule \(.rule)" end),
    (.alerts[] | "T\t\([(.risk | risk), .id, .rule, .count, (if .blocks then "BLOCKS" else "passes" end), .alert] | join("\u001f"))"),
    (.alerts[] | "M\t| \(.risk | risk) | \(.id) | \(.rule) | \(.count) | \(if .blocks then "**blocks**" else "passes" end) | \(.alert | gsub("\\|"; "\\|")) |"),
    "B\t\(.alerts | map(select(.blocks)) | length)"
  end
' "${tmp}/verdict.json" >"${tmp}/lines"

failed=0 blocking=0 alerts=0
table=() markdown=()
while IFS=$'\t' read -r tag line; do
  case ${tag} in
    E)
      annotate error "${line}"
      [[ ${line} == 'ZAP: '* ]] || failed=1
      ;;
    W) annotate warning "${line}" ;;
    T)
      IFS=$'\x1f' read -r risk id rule count result alert <<<"${line}"
      table+=("$(printf '%-14s %-7s %-20s %6s  %-7s %s' "${risk}" "${id}" "${rule}" "${count}" "${result}" "${alert}")")
      alerts=$((alerts + 1))
      ;;
    M) markdown+=("${line}") ;;
    B) blocking=${line} ;;
    *) ;;
  esac
done <"${tmp}/lines"
if ((blocking < 0)); then exit 1; fi

echo "ZAP gate for ${target} with ${rules}: ${alerts} alert(s), ${blocking} blocking"
printf '%-14s %-7s %-20s %6s  %-7s %s\n' risk rule action count result alert
if ((alerts)); then printf '%s\n' "${table[@]}"; fi

if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
  {
    echo "### ZAP gate: ${target}"
    echo
    echo "| Risk | Rule | Action | Count | Result | Alert |"
    echo "|---|---|---|---|---|---|"
    if ((alerts)); then printf '%s\n' "${markdown[@]}"; fi
    echo
    if ((failed)); then echo "The rules file is refused: see the errors above."; fi
    echo "${blocking} blocking alert(s). High-risk alerts block whatever the rules say; FAIL rules block at any risk."
  } >>"${GITHUB_STEP_SUMMARY}"
fi

if ((blocking)); then
  annotate error "ZAP gate: ${blocking} alert(s) block production"
  failed=1
fi
exit "${failed}"
