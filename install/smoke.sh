#!/bin/bash
# Run inside a root that install.sh has just installed (build-root.sh does): the station's own
# commands as a technician would run them, then one emulated booking end to end with the demo
# (its own Mosquitto on a free port, the reference central receiver), run as the service user.
set -euo pipefail
BIN=/opt/booking-station/.venv/bin
SRC=/usr/src/booking-station

echo "--- check-config"
"$BIN/booking-station" check-config /etc/booking-station/config.toml
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
