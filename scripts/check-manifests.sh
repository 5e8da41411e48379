#!/usr/bin/env bash
# The deployment as code, checked: both overlays render (kubectl kustomize), validate
# against the Kubernetes schemas (kubernetes-validate, strict), pass checkov with 0 failed
# checks (deliberate exceptions are skipped inline, each with its reason), the Dockerfile
# passes hadolint and checkov, and the CronJobs are generated from ddsite/schedule.py.
# Tools come from .venv-tools (make tools); a missing tool is an error, never a skip.
set -euo pipefail
cd "$(dirname "$0")/.."

TOOLS="${TOOLS_VENV:-.venv-tools}"
need() {
  if [ -x "$TOOLS/bin/$1" ]; then echo "$TOOLS/bin/$1"; return; fi
  command -v "$1" || { echo "manifests: $1 is not installed ($2)" >&2; exit 1; }
}
kubectl=$(need kubectl "apt-get install kubectl")
validate=$(need kubernetes-validate "make tools")
checkov=$(need checkov "make tools")
hadolint=$(need hadolint "make tools")
KUBERNETES_VERSION="${KUBERNETES_VERSION:-1.31.0}"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"${PYTHON:-python3}" scripts/render_cronjobs.py --check
for overlay in staging production; do
  "$kubectl" kustomize "k8s/overlays/$overlay" > "$out/$overlay.yaml"
  # Custom resources (ExternalSecret) have no bundled schema: warned about, not failed.
  "$validate" --strict --quiet -k "$KUBERNETES_VERSION" "$out/$overlay.yaml"
done
"$kubectl" kustomize k8s/components/in-cluster-services > /dev/null 2>&1 || {
  # A Component renders only inside a kustomization: wrap it once to check it builds.
  mkdir -p "$out/with-services"
  printf 'resources: [%s]\ncomponents: [%s]\n' "$PWD/k8s/overlays/staging" \
    "$PWD/k8s/components/in-cluster-services" > "$out/with-services/kustomization.yaml"
  "$kubectl" kustomize "$out/with-services" > /dev/null
}
"$checkov" --quiet --compact --skip-download --framework kubernetes -d "$out" --skip-path with-services
"$checkov" --quiet --compact --skip-download --framework dockerfile -f Dockerfile
"$hadolint" Dockerfile
echo "manifests: rendered, valid, checkov and hadolint clean"
