#!/usr/bin/env bash
# `pnpm test`: make this machine able to run every test, then run them all.
#
#   1. Debian's Chromium at /usr/bin/chromium (the demo page's browser test), when missing;
#   2. the Go pod for the interop tests, built by shared/go-peer/build.sh (which installs
#      Debian's Go when missing); its path is exported as GOPOD;
#   3. PostgreSQL (:5432) and NATS with JetStream (:4222), started only when they are down;
#   4. every test: `turbo run test --concurrency=1` (extra arguments go to turbo, e.g.
#      `bash scripts/test.sh --filter=@retrotro/server -- test/demo-browser.test.ts`).
#
# Nothing is ever skipped: whatever cannot be found or installed stops this script with one
# line saying what. Works as root (CI, no sudo) or as a user with passwordless sudo, and
# without a terminal (CI=true, no stdin).
# env: RETROTRO_SHARED  the shared/ folder holding go-peer/ (default: ../shared from the repo root)
#      GOPOD            an already built Go pod binary (default: build it)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*" >&2; }
die() { say "ERROR: $*"; exit 1; }

[ -x node_modules/.bin/turbo ] || die "dependencies are not installed: run pnpm install first"

# Installs and service starts need root, only when something is missing: as root run them
# as they are, else through `sudo -n` (never a password prompt: CI has no stdin).
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "not root and no sudo, cannot run: $*"
  fi
}
# Wait for dpkg's lock rather than fail when another apt-get runs on the machine.
apt_get() { as_root env DEBIAN_FRONTEND=noninteractive apt-get -q -y -o DPkg::Lock::Timeout=600 "$@"; }

# --- 1. Chromium: playwright-core brings no browser, the demo test drives Debian's.
if [ ! -x /usr/bin/chromium ]; then
  say "installing chromium (Debian package)"
  apt_get update >/dev/null || die "apt-get update failed: cannot install chromium"
  apt_get install chromium >/dev/null || die "apt-get install chromium failed"
  [ -x /usr/bin/chromium ] || die "chromium installed but /usr/bin/chromium is missing"
fi

# --- 2. The Go pod: build.sh installs Go if needed, is a no-op when up to date, and prints
# the binary's path as its only stdout line. Exported for apps/server's go-interop test.
if [ -z "${GOPOD:-}" ]; then
  shared=${RETROTRO_SHARED:-../shared}
  [ -f "$shared/go-peer/build.sh" ] ||
    die "no $shared/go-peer/build.sh (from $(pwd)): set RETROTRO_SHARED to the shared/ folder"
  GOPOD=$(bash "$shared/go-peer/build.sh") || die "building the Go pod failed (bash $shared/go-peer/build.sh)"
fi
[ -x "$GOPOD" ] || die "GOPOD=$GOPOD is not an executable"
export GOPOD

# --- 3. PostgreSQL and NATS: the machine usually runs them; start them only if they are down.
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") >/dev/null 2>&1; }
wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  die "$2 is not listening on 127.0.0.1:$1"
}
if ! port_open 5432; then
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start ||
    die "could not start PostgreSQL"
fi
if ! port_open 4222; then
  say "starting NATS"
  as_root start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log ||
    die "could not start NATS"
fi
wait_port 5432 PostgreSQL
wait_port 4222 NATS

# --- 4. Every test, one package at a time (the multi-pod suites start real processes).
exec node_modules/.bin/turbo run test --concurrency=1 "$@"
