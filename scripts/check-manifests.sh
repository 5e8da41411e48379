#!/usr/bin/env bash
# The deployment as code, checked: both overlays render (kubectl kustomize), validate
# against the Kubernetes schemas (kubernetes-validate, strict), pass checkov with 0 failed
# checks (deliberate exceptions are skipped inline, each with its reason), the Dockerfile
# passes hadolint and checkov, and the CronJobs are generated from jobs/schedule.py.
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
# The optional in-cluster services component renders on top of an overlay (a Component
# builds only inside a kustomization, which needs paths relative to it: a scratch one
# inside k8s/, removed on exit).
scratch=k8s/.render-check
trap 'rm -rf "$out" "$scratch"' EXIT
mkdir -p "$scratch"
printf 'resources: [../overlays/staging]\ncomponents: [../components/in-cluster-services]\n' \
  > "$scratch/kustomization.yaml"
"$kubectl" kustomize "$scratch" > "$out/with-services.yaml"
"$validate" --strict --quiet -k "$KUBERNETES_VERSION" "$out/with-services.yaml"
"$checkov" --quiet --compact --skip-download --framework kubernetes -d "$out" \
  --skip-path with-services.yaml
"$checkov" --quiet --compact --skip-download --framework dockerfile -f Dockerfile
"$hadolint" Dockerfile
echo "manifests: rendered, valid, checkov and hadolint clean"
