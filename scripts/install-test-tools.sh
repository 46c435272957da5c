#!/usr/bin/env bash
# Install the Debian tools the test suite drives (when run as root and they are missing).
# Each line: <command to look for> <Debian package>. Tests skip (or fail under
# LAKELENS_TEST_STRICT=1) when a tool is absent, so this list must name every one they use.
set -euo pipefail
TOOLS="
dot graphviz
promtool prometheus
chromium chromium
amtool prometheus-alertmanager
"
missing=()
while read -r cmd pkg; do
  [ -n "${cmd:-}" ] || continue
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/bin/$cmd" ] || missing+=("$pkg")
done <<< "$TOOLS"
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "Test tools missing (not root, not installing): ${missing[*]}; their tests will skip." >&2
  exit 0
fi
echo "Installing test tools: ${missing[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
