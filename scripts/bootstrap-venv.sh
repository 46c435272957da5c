#!/usr/bin/env bash
# Create the project's virtualenv; on Debian without ensurepip, install python3-venv first (as root).
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
if ! "$python" -m venv "$venv" 2>/dev/null; then
  rm -rf "$venv"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "python venv support is missing; installing python3-venv"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
    "$python" -m venv "$venv"
  else
    echo "Cannot create a virtualenv with $python: install python3-venv (sudo apt-get install python3-venv)." >&2
    exit 1
  fi
fi
"$venv/bin/python" -m pip install --quiet --upgrade pip
