#!/bin/sh
# Installs the Debian packages the test suite drives for real: Mosquitto (the tests start their
# own brokers on free ports) and Chromium (browser tests of the kiosk and admin pages).
# Runs apt-get only when something is missing and we are root (or sudo works without a password).
set -eu
missing=""
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing="$missing mosquitto"
command -v mosquitto_pub >/dev/null 2>&1 || missing="$missing mosquitto-clients"
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$missing chromium"
command -v openssl >/dev/null 2>&1 || missing="$missing openssl"
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "system-deps: missing Debian packages:$missing (run as root to install them; tests needing them will skip)" >&2
  exit 0
fi
echo "system-deps: installing$missing" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
