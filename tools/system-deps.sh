#!/bin/sh
# Installs the Debian packages that the demo or the test suite drive for real.
#   tools/system-deps.sh demo   Mosquitto (the demo's broker when none is listening)
#   tools/system-deps.sh test   Mosquitto and its clients (the tests start their own brokers on
#                               free ports), Chromium (browser tests, the kiosk screen's
#                               launcher), openssl (test PKI), fuse3 (the power-cut file system
#                               of the store's crash tests), cage and systemd-analyze (the kiosk
#                               screen's unit is verified with them), prometheus (promtool
#                               checks and tests central's alerting rules), postgresql (shared
#                               receivers' fault test starts its own cluster)
# Runs apt-get only when something is missing and we are root (or sudo works without a
# password). Otherwise the demo stops with the one command to run; the tests that need a
# missing package skip with the reason.
set -eu
what=${1:-test}
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
if [ "$what" = test ]; then
  command -v mosquitto_pub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
  command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
  command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
  command -v fusermount3 >/dev/null 2>&1 || missing="$missing fuse3"
  [ -x /usr/bin/cage ] || missing="$missing cage"
  command -v promtool >/dev/null 2>&1 || missing="$missing prometheus"
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
  command -v systemd-analyze >/dev/null 2>&1 || missing="$missing systemd"
fi
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  if [ "$what" = demo ]; then
    echo "system-deps: the demo needs Debian packages:$missing; install them with:" >&2
    echo "  sudo apt-get install$missing" >&2
    exit 2
  fi
  echo "system-deps: missing Debian packages:$missing (run as root to install them; tests needing them will skip)" >&2
  exit 0
fi
echo "system-deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
