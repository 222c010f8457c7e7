#!/bin/bash
# Installs (or upgrades) the booking station on Raspberry Pi OS trixie (arm64) or Debian 12/13
# (amd64): system packages, service users, directories, the application in a venv under /opt,
# systemd units, udev rules, the config from an example and the first-boot secrets.
#
# Run as root from a checkout (or an unpacked source tree):
#     sudo install/install.sh [options]
# Running it again is safe: what is in place stays, the store and the secrets are never
# touched, and a new version of the application replaces the old one only after it has
# loaded NFIQ 2 and accepted the station's config. See docs/install.md.
set -euo pipefail

PREFIX=/opt/booking-station
ETC=/etc/booking-station
STATE=/var/lib/booking-station
SERVICE_USER=booking-station
KIOSK_USER=booking-kiosk
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

source_dir=$(dirname "$HERE")
wheel=""
config_file=""
example=""
kiosk=auto
start=yes
force=no
admin_user=tech
officer_id=officer1
mqtt_user=""
central_key=""

usage() {
    cat <<USAGE
usage: install.sh [--source DIR | --wheel FILE] [--config FILE | --example NAME]
                  [--kiosk yes|no|auto] [--admin-user NAME] [--officer ID]
                  [--mqtt-user NAME] [--central-key FILE] [--no-start] [--force]

  --source DIR     the booking-station source tree to install (default: this script's checkout)
  --wheel FILE     install this built wheel instead of the source tree
  --config FILE    first config for /etc/booking-station/config.toml (kept if one exists)
  --example NAME   start from appliance/examples/NAME.toml (default: raspberry-pi on arm64,
                   x86-kiosk on amd64)
  --kiosk yes|no   the kiosk screen service (Chromium under cage on tty1); auto: yes when
                   the machine has a display device (/dev/dri/card*)
  --admin-user     technician login created on first install (default: tech)
  --officer ID     kiosk officer created on first install (default: officer1)
  --mqtt-user NAME also create the mqtt-password credential for this broker user
  --central-key FILE  central's Ed25519 public key (PEM) from the agency, installed as
                   /etc/booking-station/central-ed25519.pub (the examples' mqtt.central_keys)
  --no-start       install and enable, but do not (re)start the services now
  --force          rebuild the application's venv even when this version is installed
USAGE
}

while [ $# -gt 0 ]; do
    case "$1" in
        --source) source_dir=$(cd "$2" && pwd); shift 2 ;;
        --wheel) wheel=$(readlink -f "$2"); shift 2 ;;
        --config) config_file=$(readlink -f "$2"); shift 2 ;;
        --example) example=$2; shift 2 ;;
        --kiosk) kiosk=$2; shift 2 ;;
        --admin-user) admin_user=$2; shift 2 ;;
        --officer) officer_id=$2; shift 2 ;;
        --mqtt-user) mqtt_user=$2; shift 2 ;;
        --central-key) central_key=$(readlink -f "$2"); shift 2 ;;
        --no-start) start=no; shift ;;
        --force) force=yes; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option $1" >&2; usage >&2; exit 2 ;;
    esac
done

say() { printf '==> %s\n' "$*"; }
refuse() { printf 'install.sh: %s\n' "$*" >&2; exit 3; }
# put MODE SRC DEST: install a file only when its content or mode differ, so a second run
# writes nothing (an SD card counts every write)
changed=no
put() {
    if ! cmp -s "$2" "$3" || [ "$(stat -c %a "$3")" != "${1#0}" ]; then
        install -m "$1" "$2" "$3"
        changed=yes
    fi
}

[ "$(id -u)" = 0 ] || refuse "run as root (sudo install/install.sh)"
[ -f "$source_dir/pyproject.toml" ] || [ -n "$wheel" ] \
    || refuse "no source tree at $source_dir (use --source DIR or --wheel FILE)"

# --- 1. Is this a platform where the station can run? ----------------------------------
# Decided from what was shown (README, "Support matrix"); the venv probe below has the last
# word, so an untried combination is refused only when NFIQ 2 really does not load.
. /etc/os-release
arch=$(dpkg --print-architecture)
glibc=$(getconf GNU_LIBC_VERSION | awk '{print $2}')
glibc_at_least() { [ "$(printf '%s\n%s\n' "$1" "$glibc" | sort -V | head -n1)" = "$1" ]; }
case "${ID:-}:${ID_LIKE:-}" in
    debian:*|raspbian:*|*:*debian*) ;;
    *) refuse "this installer knows Debian and Raspberry Pi OS only (found ${PRETTY_NAME:-unknown})" ;;
esac
case "$arch" in
    amd64) ;;
    arm64)
        glibc_at_least 2.38 || refuse "no NFIQ 2 binding can load on ${PRETTY_NAME:-this system} \
(arm64, glibc $glibc): nbis-py has no aarch64 wheel and nbis-python's aarch64 wheel needs \
glibc 2.38. Install Raspberry Pi OS trixie (Debian 13, 64-bit)." ;;
    armhf|armel|i386)
        refuse "$arch is not supported: onnxruntime and the NFIQ 2 bindings have no $arch wheels. \
Install the 64-bit Raspberry Pi OS (trixie)." ;;
    *) refuse "architecture $arch is not supported (amd64 and arm64 are)" ;;
esac
if [ -z "$example" ]; then
    if [ "$arch" = arm64 ]; then example=raspberry-pi; else example=x86-kiosk; fi
fi
if [ "$kiosk" = auto ]; then
    if compgen -G '/dev/dri/card*' >/dev/null; then kiosk=yes; else kiosk=no; fi
fi
say "installing on ${PRETTY_NAME:-Debian} ($arch, glibc $glibc); kiosk screen: $kiosk"

# --- 2. System packages ------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
packages=(python3 python3-venv libusb-1.0-0 ca-certificates)
[ "$kiosk" = yes ] && packages+=(cage xwayland chromium fonts-dejavu-core)
# wsq has no aarch64 wheel: pip compiles it, so the compiler and headers are here only while
# the venv is built, and leave again afterwards.
build_tools=(build-essential python3-dev)
missing_build_tools=()
for pkg in "${build_tools[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
        || missing_build_tools+=("$pkg")
done
apt_updated=no
apt_install() {
    local need=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || need+=("$pkg")
    done
    [ ${#need[@]} -eq 0 ] && return 0
    if [ "$apt_updated" = no ]; then apt-get update -qq; apt_updated=yes; fi
    say "apt-get install ${need[*]}"
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
}
apt_install "${packages[@]}"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
    || refuse "Python 3.11 or newer is needed (found $(python3 -V 2>&1))"

# --- 3. Users and directories ------------------------------------------------------------
if ! getent passwd "$SERVICE_USER" >/dev/null; then
    say "creating system user $SERVICE_USER"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "booking station" "$SERVICE_USER"
fi
getent group dialout >/dev/null || groupadd --system dialout
id -nG "$SERVICE_USER" | grep -qw dialout || usermod -a -G dialout "$SERVICE_USER"
if [ "$kiosk" = yes ] && ! getent passwd "$KIOSK_USER" >/dev/null; then
    say "creating system user $KIOSK_USER (the kiosk screen)"
    useradd --system --user-group --home-dir /run/booking-kiosk --no-create-home \
        --shell /usr/sbin/nologin --comment "booking station kiosk screen" "$KIOSK_USER"
fi
if [ "$kiosk" = yes ]; then
    for group in video render input; do
        getent group "$group" >/dev/null && usermod -a -G "$group" "$KIOSK_USER"
    done
fi
install -d -m 0755 /etc/tmpfiles.d
put 0644 "$HERE/../systemd/booking-station.tmpfiles" /etc/tmpfiles.d/booking-station.conf
systemd-tmpfiles --create /etc/tmpfiles.d/booking-station.conf

# --- 4. The application, in a venv of its own per version --------------------------------
# /opt/booking-station/.venv is a link to venvs/<stamp>: an upgrade builds the new venv beside
# the running one and swaps the link only once the new one has proved itself.
if [ -n "$wheel" ]; then
    target=$wheel
    stamp=$(python3 "$HERE/stamp.py" "$wheel")
else
    target=$source_dir
    stamp=$(python3 "$HERE/stamp.py" "$source_dir")
fi
venv=$PREFIX/venvs/$stamp
current=$(readlink "$PREFIX/.venv" 2>/dev/null || true)
install -d -m 0755 "$PREFIX" "$PREFIX/venvs"
if [ "$current" = "$venv" ] && [ "$force" = no ] && [ -x "$venv/bin/booking-station" ]; then
    say "application $stamp already installed"
    fresh=no
else
    rm -rf "$venv"
    say "building the application venv $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade pip
    if ! "$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary wsq \
            "$target" 2>/dev/null; then
        # no wheel for something (wsq on aarch64): build it, then take the tools away again
        apt_install "${build_tools[@]}"
        # wsq's setup.py passes -m64 to the compiler on every POSIX system, and only x86
        # compilers know it: aarch64's gcc stops with "unrecognized command-line option".
        # A compiler wrapper drops that one flag (harmless on x86_64, where it is the default).
        ccwrap=$(mktemp -d)
        printf '%s\n' '#!/bin/sh' \
            'for a; do shift; [ "$a" = -m64 ] || set -- "$@" "$a"; done' \
            'exec gcc "$@"' > "$ccwrap/cc"
        chmod 0755 "$ccwrap/cc"
        CC="$ccwrap/cc" "$venv/bin/pip" install --quiet --disable-pip-version-check "$target"
        rm -rf "$ccwrap"
        if [ ${#missing_build_tools[@]} -gt 0 ]; then
            say "removing the build tools again: ${missing_build_tools[*]}"
            apt-mark auto "${missing_build_tools[@]}" >/dev/null
            apt-get autoremove --purge -y -qq >/dev/null
        fi
    fi
    fresh=yes
fi
if ! probe=$("$venv/bin/python" "$HERE/probe.py" 2>&1); then
    [ "$fresh" = yes ] && [ "$current" != "$venv" ] && rm -rf "$venv"
    refuse "the application does not run on this system: $probe"
fi
say "$probe"

# --- 5. Config, first-boot secrets -------------------------------------------------------
if [ ! -f "$ETC/config.toml" ]; then
    if [ -n "$config_file" ]; then
        install -m 0644 "$config_file" "$ETC/config.toml"
    else
        install -m 0644 "$("$venv/bin/python" -c 'import appliance, pathlib, sys
print(pathlib.Path(appliance.__file__).parent / "examples" / (sys.argv[1] + ".toml"))' "$example")" \
            "$ETC/config.toml"
    fi
    say "wrote $ETC/config.toml (from ${config_file:-the $example example}): edit it, then"
    say "    $PREFIX/.venv/bin/booking-station check-config $ETC/config.toml"
fi
# The file alone: the machine side (the service user's view of its folders and credentials)
# is checked by the unit's ExecStartPre, as that user, each time the station starts.
if ! "$venv/bin/booking-station" check-config --file-only "$ETC/config.toml"; then
    [ "$fresh" = yes ] && [ "$current" != "$venv" ] && rm -rf "$venv"
    refuse "$ETC/config.toml does not pass this version's check-config (errors above); \
the installed version is unchanged"
fi
first_boot=("$venv/bin/python" "$HERE/first_boot.py" --etc "$ETC" --service-user "$SERVICE_USER"
            --admin-user "$admin_user" --officer "$officer_id"
            --booking-station "$venv/bin/booking-station")
[ -n "$mqtt_user" ] && first_boot+=(--mqtt-user "$mqtt_user")
[ -n "$central_key" ] && first_boot+=(--central-key "$central_key")
"${first_boot[@]}"

local_broker=$("$venv/bin/python" -c 'import sys, tomllib
cfg = tomllib.load(open(sys.argv[1], "rb"))
host = cfg.get("mqtt", {}).get("host", "127.0.0.1")
print("yes" if host in ("127.0.0.1", "localhost", "::1") else "no")' "$ETC/config.toml")
[ "$local_broker" = yes ] && apt_install mosquitto

# --- 6. Units, udev rules, journald, the kiosk -------------------------------------------
systemd_running=no
[ -d /run/systemd/system ] && systemd_running=yes
units=(booking-station.service)
put 0644 "$HERE/../systemd/booking-station.service" /etc/systemd/system/booking-station.service
install -d -m 0755 /etc/udev/rules.d
put 0644 "$HERE/../systemd/60-booking-station-scanners.rules" \
    /etc/udev/rules.d/60-booking-station-scanners.rules
install -d -m 0755 /etc/systemd/journald.conf.d
changed_before_journald=$changed
changed=no
put 0644 "$HERE/../systemd/journald-booking-station.conf" \
    /etc/systemd/journald.conf.d/booking-station.conf
journald_changed=$changed
[ "$changed_before_journald" = yes ] && changed=yes
dropins=/etc/systemd/system/booking-station.service.d
if [ -f "$ETC/credentials/mqtt-password" ]; then
    install -d -m 0755 "$dropins"
    printf '[Service]\nLoadCredential=booking-station-mqtt-password:%s\n' \
        "$ETC/credentials/mqtt-password" > "$dropins/.mqtt-password.new"
    put 0644 "$dropins/.mqtt-password.new" "$dropins/mqtt-password.conf"
    rm -f "$dropins/.mqtt-password.new"
fi
if [ "$kiosk" = yes ]; then
    units+=(booking-station-kiosk.service)
    put 0644 "$HERE/../systemd/booking-station-kiosk.service" \
        /etc/systemd/system/booking-station-kiosk.service
    put 0644 "$HERE/../systemd/booking-station-kiosk.pam" /etc/pam.d/booking-station-kiosk
    install -d -m 0755 "$PREFIX/kiosk"
    put 0755 "$HERE/kiosk/launcher.py" "$PREFIX/kiosk/launcher.py"
    put 0644 "$HERE/kiosk/station-down.html" "$PREFIX/kiosk/station-down.html"
fi
install -d -m 0755 /usr/share/doc/booking-station
for doc in README.md docs/install.md; do
    [ -f "$source_dir/$doc" ] && put 0644 "$source_dir/$doc" "/usr/share/doc/booking-station/$(basename "$doc")"
done
put 0755 "$HERE/uninstall.sh" "$PREFIX/uninstall.sh"

# --- 7. Switch over ----------------------------------------------------------------------
if [ "$current" != "$venv" ]; then
    if [ "$systemd_running" = yes ] && systemctl is-active -q booking-station.service; then
        say "stopping the station for the upgrade"
        systemctl stop booking-station.service
    fi
    if [ -n "$current" ] && "$venv/bin/python" "$HERE/probe.py" --has-store "$ETC/config.toml"; then
        say "backing up the store before the upgrade"
        runuser -u "$SERVICE_USER" -- "$current/bin/booking-station" store backup \
            --config "$ETC/config.toml" || refuse "the store backup failed; the installed version is unchanged"
    fi
    ln -sfn "$venv" "$PREFIX/.venv.next" && mv -T "$PREFIX/.venv.next" "$PREFIX/.venv"
    changed=yes
    # keep the version just replaced (for going back by hand), drop anything older
    for old in "$PREFIX"/venvs/*; do
        [ "$old" = "$venv" ] || [ "$old" = "$current" ] || rm -rf "$old"
    done
    say "application $stamp is now $PREFIX/.venv"
fi

if [ "$systemd_running" = yes ]; then
    systemctl daemon-reload
    udevadm control --reload && udevadm trigger --subsystem-match=usb --subsystem-match=tty || true
    [ "$journald_changed" = yes ] && systemctl try-restart systemd-journald.service
    [ "$local_broker" = yes ] && systemctl enable -q --now mosquitto.service
else
    [ "$local_broker" = yes ] && systemctl enable -q mosquitto.service
fi
systemctl enable -q "${units[@]}"
if [ "$systemd_running" = yes ] && [ "$start" = yes ]; then
    if [ "$changed" = yes ]; then
        say "restarting ${units[*]}"
        systemctl restart "${units[@]}"
    else
        systemctl start "${units[@]}"   # nothing changed: a running station is left alone
    fi
fi
say "done: booking-station $stamp; the store in $STATE and the secrets in $ETC are kept across upgrades"
