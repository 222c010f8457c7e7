#!/bin/bash
# Run inside a booted root (build-root.sh boots it with systemd-nspawn): the installed service
# as systemd runs it, sandbox and all. Waits for READY, takes one booking through the kiosk API,
# shows the sandbox the kernel applied (no capabilities, no new privileges, a seccomp filter),
# systemd's own security verdict, and a restart.
set -euo pipefail
after_upgrade=no
[ "${1:-}" = --after-upgrade ] && after_upgrade=yes
py=/opt/booking-station/.venv/bin/python
wait_active() {
    local deadline=$((SECONDS + 600))
    until systemctl is-active -q booking-station.service; do
        if systemctl is-failed -q booking-station.service || [ $SECONDS -gt $deadline ]; then
            systemctl status booking-station.service --no-pager || true
            journalctl -u booking-station.service --no-pager -n 50 || true
            exit 1
        fi
        sleep 2
    done
}
wait_active
echo "--- booking-station.service is active (Type=notify: READY received): $(systemctl show -p StatusText --value booking-station.service)"
pid=$(systemctl show -p MainPID --value booking-station.service)
grep -E "^(CapEff|CapBnd|NoNewPrivs|Seccomp):" "/proc/$pid/status"
grep -q "rwx" "/proc/$pid/maps" && { echo "writable and executable memory mapped" >&2; exit 1; }
echo "no memory both writable and executable (MemoryDenyWriteExecute)"
port=$($py -c 'import tomllib
print(tomllib.load(open("/etc/booking-station/config.toml", "rb")).get("web", {}).get("port", 8080))')
if [ "$after_upgrade" = yes ]; then
    # the store came through: the booking taken before the upgrade is still there
    # the kiosk's list needs a signed-in officer: the store itself says what it holds
    $py - <<'PY'
import sqlite3, sys
db = sqlite3.connect("file:/var/lib/booking-station/station.db?mode=ro", uri=True)
(count,) = db.execute("SELECT COUNT(*) FROM bookings").fetchone()
print("bookings after the upgrade:", count)
sys.exit(0 if count >= 1 else 1)
PY
    echo "venvs: $(ls /opt/booking-station/venvs | tr '\n' ' ')-> $(readlink /opt/booking-station/.venv)"
    ls /var/lib/booking-station/backups | tail -n 2
    echo "--- upgrade check passed"
    exit 0
fi
# a kiosk officer for this check only (first boot's PIN was shown once, to the installer's
# operator); the service reads its credentials at start, so it restarts around the check
officers=/etc/booking-station/credentials/officers
pin=$($py -c 'import secrets; print(f"{secrets.randbelow(10**6):06d}")')
cp -p "$officers" "$officers.before-boot-check"
$py -c 'import sys; from argon2 import PasswordHasher
print("boot-check:" + PasswordHasher().hash(sys.argv[1]))' "$pin" >> "$officers"
systemctl restart booking-station.service
wait_active
$py /usr/src/booking-station/install/smoke/booking.py "$port" BOOT-0001 boot-check "$pin"
mv -f "$officers.before-boot-check" "$officers"
systemd-analyze security booking-station.service | tail -1
systemctl restart booking-station.service
systemctl is-active booking-station.service
echo "--- restarted: $(systemctl show -p StatusText --value booking-station.service)"
journalctl -u booking-station.service --no-pager -o cat | grep -E "Deactivated successfully|Failed" || true
echo "--- boot check passed"
