#!/bin/bash
# Run inside a booted root (build-root.sh boots it with systemd-nspawn): the installed service
# as systemd runs it, sandbox and all. Waits for READY, takes one booking through the kiosk API,
# shows the sandbox the kernel applied (no capabilities, no new privileges, a seccomp filter),
# systemd's own security verdict, and a restart.
set -euo pipefail
after_upgrade=no
[ "${1:-}" = --after-upgrade ] && after_upgrade=yes
deadline=$((SECONDS + 600))
until systemctl is-active -q booking-station.service; do
    if systemctl is-failed -q booking-station.service || [ $SECONDS -gt $deadline ]; then
        systemctl status booking-station.service --no-pager || true
        journalctl -u booking-station.service --no-pager -n 50 || true
        exit 1
    fi
    sleep 2
done
echo "--- booking-station.service is active (Type=notify: READY received): $(systemctl show -p StatusText --value booking-station.service)"
pid=$(systemctl show -p MainPID --value booking-station.service)
grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" "/proc/$pid/status"
grep -q "rwx" "/proc/$pid/maps" && { echo "writable and executable memory mapped" >&2; exit 1; }
echo "no memory both writable and executable (MemoryDenyWriteExecute)"
port=$(/opt/booking-station/.venv/bin/python -c 'import tomllib
print(tomllib.load(open("/etc/booking-station/config.toml", "rb")).get("web", {}).get("port", 8080))')
if [ "$after_upgrade" = yes ]; then
    # the store came through: the booking taken before the upgrade is still there
    /opt/booking-station/.venv/bin/python - "$port" <<'PY'
import json, sys, urllib.request
kiosk = json.load(urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/api/kiosk", timeout=60))
numbers = [b["booking_number"] for b in kiosk["bookings"]]
print("bookings after the upgrade:", numbers)
sys.exit(0 if "BOOT-0001" in numbers else 1)
PY
    echo "venvs: $(ls /opt/booking-station/venvs | tr '\n' ' ')-> $(readlink /opt/booking-station/.venv)"
    ls /var/lib/booking-station/backups | tail -n 2
    echo "--- upgrade check passed"
    exit 0
fi
/opt/booking-station/.venv/bin/python /usr/src/booking-station/install/smoke/booking.py "$port" BOOT-0001
systemd-analyze security booking-station.service | tail -1
systemctl restart booking-station.service
systemctl is-active booking-station.service
echo "--- restarted: $(systemctl show -p StatusText --value booking-station.service)"
journalctl -u booking-station.service --no-pager -o cat | grep -E "Deactivated successfully|Failed" || true
echo "--- boot check passed"
