#!/bin/bash
# Run inside a root that install.sh has just installed (build-root.sh does): the station's own
# commands as a technician would run them, then one emulated booking end to end with the demo
# (its own Mosquitto on a free port, the reference central receiver), run as the service user.
set -euo pipefail
BIN=/opt/booking-station/.venv/bin
SRC=/usr/src/booking-station

echo "--- check-config (file and machine, as the unit's ExecStartPre runs it)"
# the credentials as systemd hands them over: the unit's LoadCredential lines, read by the
# service user
creds=$(mktemp -d /run/booking-station-credentials.XXXXXX)
sed -n 's/^LoadCredential=\([^:]*\):\(.*\)$/\1 \2/p' /etc/systemd/system/booking-station.service \
    | while read -r name source; do install -m 0400 -o booking-station "$source" "$creds/$name"; done
chown booking-station "$creds"
runuser -u booking-station -- env CREDENTIALS_DIRECTORY="$creds" \
    "$BIN/booking-station" check-config /etc/booking-station/config.toml
rm -rf "$creds"
echo "--- extract (a NIST test print)"
"$BIN/booking-station" extract "$SRC/tests/fixtures/nist/input/cmp00010.webp" \
    | "$BIN/python" -c 'import json, sys; m = json.load(sys.stdin)["minutiae"]; print(len(m), "minutiae")'
echo "--- one emulated booking, held by the reference central receiver"
state=$(mktemp -d /var/tmp/booking-station-smoke.XXXXXX)
chown booking-station: "$state"
if "$BIN/booking-station" demo --help >/dev/null 2>&1; then
    demo=("$BIN/booking-station" demo)
else
    demo=("$BIN/python" -m demo)   # the demo outside the installed package
fi
cd "$SRC"
runuser -u booking-station -- "${demo[@]}" --bookings 1 --timeout 1800 --broker mosquitto \
    --web-port 0 --state-dir "$state/demo"
rm -rf "$state"
echo "--- smoke passed"
