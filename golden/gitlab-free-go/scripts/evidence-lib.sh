#!/usr/bin/env bash
# Helpers for the evidence scripts next to this file, on any CI platform. Source it, never run it:
#   . "$(dirname -- "${BASH_SOURCE[0]}")/evidence-lib.sh"
#
#   error, warn, die, require_env, require_uint  from lib.sh (sourced here)
#   PP_TMP                  a private folder, removed on exit (under TMPDIR)
# Nothing here reads a platform's variables: inputs come through the environment each script documents.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

PP_TMP=$(mktemp -d "${TMPDIR:-/tmp}/pipeproof.XXXXXX")
trap 'rm -rf -- "${PP_TMP}"' EXIT
