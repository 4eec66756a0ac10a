#!/usr/bin/env bash
# Builds kubectl-instagram for every platform of plugins/instagram.yaml into
# bin/release/kubectl-instagram_<os>_<arch>.tar.gz (reproducible: -trimpath,
# sorted entries, fixed mtime and owner) and writes bin/release/instagram.yaml,
# the krew manifest with the given version and the archives' sha256 sums.
set -euo pipefail
version=${1:?usage: hack/plugin-release.sh vX.Y.Z}
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/bin/release
template=$root/plugins/instagram.yaml
if [[ ! -f $root/LICENSE ]]; then
  echo "plugin-release: LICENSE is missing; the krew manifest ships it in every archive" >&2
  exit 1
fi
mkdir -p "$out"
manifest=$(sed "s#v0\.1\.0#${version}#g" "$template")
for platform in linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64; do
  os=${platform%/*} arch=${platform#*/}
  exe=kubectl-instagram
  [[ $os == windows ]] && exe=kubectl-instagram.exe
  stage=$(mktemp -d)
  echo "building $os/$arch"
  (cd "$root" && CGO_ENABLED=0 GOOS=$os GOARCH=$arch go build -trimpath -ldflags="-s -w" -o "$stage/$exe" ./cmd/kubectl-instagram)
  cp "$root/LICENSE" "$stage/LICENSE"
  archive=$out/kubectl-instagram_${os}_${arch}.tar.gz
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$stage" -cf - "$exe" LICENSE | gzip -n > "$archive"
  rm -rf "$stage"
  sum=$(sha256sum "$archive" | cut -d' ' -f1)
  # The sha256 line follows the uri line of its archive.
  manifest=$(awk -v name="kubectl-instagram_${os}_${arch}.tar.gz" -v sum="$sum" '
    index($0, "uri:") && index($0, name) { print; hit = 1; next }
    hit && /sha256:/ { sub(/"[0-9a-f]+"/, "\"" sum "\""); hit = 0 }
    { print }' <<<"$manifest")
done
printf '%s\n' "$manifest" > "$out/instagram.yaml"
if grep -q '"0000000000000000000000000000000000000000000000000000000000000000"' "$out/instagram.yaml"; then
  echo "plugin-release: a platform of the template was not built" >&2
  exit 1
fi
echo "wrote $out/instagram.yaml and $(ls "$out"/*.tar.gz | wc -l) archives"
