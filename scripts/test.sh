#!/usr/bin/env bash
# The full test suite, from a fresh Debian machine: installs what the tests need, starts the
# services they talk to, checks formatting and lints, builds every target once (benchmarks
# included, so they keep compiling) and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TMP="$ROOT/.ci/tmp"
mkdir -p "$TMP"

log() { printf '\n== %s\n' "$*"; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  log "installing Debian packages: $*"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# --- toolchain and packages -------------------------------------------------------------
missing=()
command -v cc >/dev/null || missing+=(build-essential)
command -v curl >/dev/null || missing+=(curl)
[ -x /usr/sbin/slapd ] || missing+=(slapd ldap-utils)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
command -v pg_ctl >/dev/null || [ -x "$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)/pg_ctl" ] || missing+=(postgresql)
command -v psql >/dev/null || missing+=(postgresql-client)
command -v python3 >/dev/null || missing+=(python3 python3-venv)
# promtool checks deploy/prometheus/alerts.yml (crates/cli/tests/deploy.rs).
command -v promtool >/dev/null || missing+=(prometheus)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; fi
if ! command -v cargo >/dev/null; then
  echo "cargo is required (https://rustup.rs); this machine kind ships it" >&2
  exit 1
fi

# Python peers used by the tests (a real SMTP server).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  log "installing aiosmtpd"
  python3 -m pip install --quiet aiosmtpd==1.4.6 \
    || python3 -m pip install --quiet --break-system-packages aiosmtpd==1.4.6
fi

# A real OpenID provider (npm oidc-provider) for the single sign-on tests; node and npm come
# from Debian when missing.
command -v npm >/dev/null || apt_install nodejs npm
OIDC_FIXTURE=crates/testkit/fixtures/oidc
if [ ! -d "$OIDC_FIXTURE/node_modules" ]; then
  log "installing the test OpenID provider"
  npm ci --prefix "$OIDC_FIXTURE" --no-audit --no-fund --silent
fi

# --- PostgreSQL -----------------------------------------------------------------------------
PG_URL="${DESKGATE_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
pg_ok() { psql "$1" -qtAc 'SELECT 1' >/dev/null 2>&1; }
if ! pg_ok "$PG_URL"; then
  if command -v pg_ctlcluster >/dev/null && ls /etc/postgresql/*/main >/dev/null 2>&1; then
    ver=$(ls /etc/postgresql | sort -V | tail -1)
    log "starting PostgreSQL $ver"
    as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
    for _ in $(seq 1 30); do pg_ok "postgres://postgres@127.0.0.1:5432/postgres" && break; sleep 0.5; done
    if pg_ok "postgres://postgres@127.0.0.1:5432/postgres" && ! pg_ok "$PG_URL"; then
      psql "postgres://postgres@127.0.0.1:5432/postgres" -qc 'CREATE DATABASE test' || true
    fi
  fi
fi
if ! pg_ok "$PG_URL"; then
  # No usable server with trust auth on 5432: run a throwaway cluster of our own.
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  D="$TMP/pg"
  log "starting a private PostgreSQL cluster on port $port"
  rm -rf "$D"; mkdir -p "$D"; chown postgres "$D" 2>/dev/null || true
  run_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
  run_pg "$bindir/initdb" -N -D "$D/data" -U postgres --auth=trust >/dev/null
  run_pg "$bindir/pg_ctl" -D "$D/data" -l "$D/log" -w -o "-c listen_addresses=127.0.0.1 -p $port -k $D" start >/dev/null
  psql "postgres://postgres@127.0.0.1:$port/postgres" -qc 'CREATE DATABASE test'
  PG_URL="postgres://postgres@127.0.0.1:$port/test"
fi
export DESKGATE_TEST_POSTGRES="$PG_URL"
# Databases left behind by interrupted runs.
for db in $(psql "$PG_URL" -qtAc "SELECT datname FROM pg_database WHERE datname LIKE 'dg\_t\_%'"); do
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
done

# --- checks, one build, tests ----------------------------------------------------------------
log "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path fuzz/Cargo.toml -- --check
log "cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
log "build (all targets, benchmarks included)"
cargo build --workspace --all-targets --quiet
# Before the tests, so that the test runner's summary closes the output.
log "fuzz targets (each replays its corpus, then fuzzes briefly)"
./scripts/fuzz-smoke.sh
log "tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
