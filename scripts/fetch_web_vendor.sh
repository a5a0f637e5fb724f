#!/usr/bin/env bash
# Install the web app's browser-side files from the npm registry into
# src/skinscreen/web/static/vendor/ (git-ignored), pinned and integrity-checked:
#
#   onnxruntime-web 1.30.0   (MIT)        the in-browser runtime of the on-device mode (WASM)
#   swagger-ui-dist 5.35.0   (Apache-2.0) the /docs page of the API
#
# They are fetched once, at set-up time, and then served by `skinscreen serve` itself: the page
# never loads anything from a CDN. Needs node/npm; idempotent; a failure leaves no half-filled
# vendor directory.
#
# Usage: scripts/fetch_web_vendor.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/src/skinscreen/web/static/vendor"

# name version dist.integrity (as published on registry.npmjs.org) files...
PACKAGES=(
  "onnxruntime-web|1.30.0|sha512-q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==|dist/ort.wasm.min.mjs dist/ort-wasm-simd-threaded.mjs dist/ort-wasm-simd-threaded.wasm"
  "swagger-ui-dist|5.35.0|sha512-U06rpMtW9V3XPGOBeamTUSr0Z09jMX4IJuANpE/EZbAhw0G8CgwrzU4YmXkn/h0wCDNsXdGarTNNHC3sU8yVUQ==|swagger-ui-bundle.js swagger-ui.css"
)

if ! command -v npm >/dev/null 2>&1; then
  echo "error: npm not found: install Node.js (e.g. apt-get install -y nodejs npm) and re-run" >&2
  exit 1
fi

want_stamp=""
all_present=1
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r name version integrity files <<<"$entry"
  want_stamp+="$name@$version"$'\n'
  for f in $files; do [[ -s "$dest/$(basename "$f")" ]] || all_present=0; done
done
if [[ $all_present == 1 && -f "$dest/VERSIONS" && "$(cat "$dest/VERSIONS")"$'\n' == "$want_stamp" ]]; then
  echo "web vendor files already installed in $dest"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
stage="$tmp/vendor"
mkdir -p "$stage"
for entry in "${PACKAGES[@]}"; do
  IFS='|' read -r name version integrity files <<<"$entry"
  work="$tmp/$name"
  mkdir -p "$work"
  (cd "$work" && npm pack --silent "$name@$version" >/dev/null)
  tgz="$work/$name-$version.tgz"
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  if [[ "$got" != "$integrity" ]]; then
    echo "error: $name-$version.tgz integrity mismatch ($got); refusing to install" >&2
    exit 1
  fi
  tar -xzf "$tgz" -C "$work"
  for f in $files; do cp "$work/package/$f" "$stage/"; done
  cp "$work/package/package.json" "$stage/$name.package.json"
  echo "  $name $version"
done
printf '%s' "$want_stamp" >"$stage/VERSIONS"

mkdir -p "$(dirname "$dest")"
rm -rf "$dest.old"
if [[ -d "$dest" ]]; then mv "$dest" "$dest.old"; fi
cp -r "$stage" "$dest"
rm -rf "$dest.old"
echo "installed web vendor files into $dest"
