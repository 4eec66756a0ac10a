#!/usr/bin/env bash
# Regenerates deepcopy, CRDs, RBAC and the chart's copies of config/ (CRDs,
# RBAC roles, user roles, admission policies, alerts) in a scratch copy of
# the module and fails when they differ from the files in the work tree.
# make chart empties the chart's crds/ and files/ first, so a copy that
# config/ no longer has shows as well.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cd "$root"
git ls-files --cached --others --exclude-standard -z | xargs -0 -I{} cp --parents {} "$scratch" 2>/dev/null || true
cd "$scratch"
make -s generate manifests >/dev/null
status=0
for path in api config/crd/bases config/rbac docs/api-reference.md charts/instagram-operator/crds charts/instagram-operator/files; do
  if ! diff -ru "$root/$path" "$scratch/$path" >/tmp/verify-generated.diff 2>&1; then
    echo "generated files under $path are stale; run 'make generate manifests' and commit:" >&2
    head -50 /tmp/verify-generated.diff >&2
    status=1
  fi
done
exit $status
