#!/usr/bin/env bash
# Runs the Deskgate demo on embedded SQLite from a fresh machine: installs a C compiler if it is
# missing (SQLite and ring are built from C), builds, seeds the demo organisation and serves it.
# Arguments are passed to `deskgate demo` (e.g. --listen 127.0.0.1:9090 --data ./demo-data).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential;
  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq build-essential; fi
fi
exec cargo run --release --quiet -p deskgate -- demo "$@"
