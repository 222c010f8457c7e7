#!/bin/bash
# Removes the booking station's program, units and rules. The store, the config and the secrets
# stay (a reinstall picks them up again) unless --purge is given, which also removes the
# service users. Installed as /opt/booking-station/uninstall.sh.
#
#     sudo /opt/booking-station/uninstall.sh [--purge]
set -euo pipefail
purge=no
case "${1:-}" in
    --purge) purge=yes ;;
    "") ;;
    *) echo "usage: uninstall.sh [--purge]" >&2; exit 2 ;;
esac
[ "$(id -u)" = 0 ] || { echo "uninstall.sh: run as root" >&2; exit 2; }

units=(booking-station-kiosk.service booking-station.service)
if [ -d /run/systemd/system ]; then
    systemctl disable -q --now "${units[@]}" 2>/dev/null || true
else
    systemctl disable -q "${units[@]}" 2>/dev/null || true
fi
rm -f /etc/systemd/system/booking-station.service /etc/systemd/system/booking-station-kiosk.service
rm -rf /etc/systemd/system/booking-station.service.d
rm -f /etc/udev/rules.d/60-booking-station-scanners.rules /etc/tmpfiles.d/booking-station.conf
rm -f /etc/systemd/journald.conf.d/booking-station.conf /etc/pam.d/booking-station-kiosk
rm -rf /opt/booking-station /usr/share/doc/booking-station
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload
    udevadm control --reload 2>/dev/null || true
fi

if [ "$purge" = yes ]; then
    rm -rf /etc/booking-station /var/lib/booking-station /var/cache/booking-station \
        /var/log/booking-station
    for user in booking-kiosk booking-station; do
        getent passwd "$user" >/dev/null && userdel "$user"
        getent group "$user" >/dev/null && groupdel "$user"
    done
    echo "booking-station removed, with its store, config and secrets"
else
    echo "booking-station removed; kept: /etc/booking-station (config, secrets) and"
    echo "/var/lib/booking-station (the store). Remove them too with: uninstall.sh --purge"
fi
