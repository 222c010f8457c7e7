#!/bin/bash
# Shows the install without the hardware: builds a Debian root for another machine (arm64
# Debian 13 stands in for Raspberry Pi OS trixie; amd64 Debian 12 or 13 for a kiosk PC) with
# mmdebstrap, runs install/install.sh inside it twice (the second run must change nothing),
# then install/smoke.sh (check-config, extract, one emulated booking held by central); then,
# for this machine's own architecture, boots the root with systemd-nspawn and runs
# install/boot-check.sh (the service under systemd with its sandbox, a booking, a restart);
# then the uninstaller. arm64 runs through qemu-user-static and binfmt_misc.
#
#     sudo install/build-root.sh --suite trixie --arch arm64 [--dir DIR] [--kiosk yes] [--no-boot]
#                                [--keep] [--reuse]
#
# --keep leaves the root in place afterwards; --reuse starts from a root kept by an earlier run
# instead of building it again (under emulation mmdebstrap takes the better part of an hour, and
# a network hiccup in a later step should not cost that again).
#
# Needs the Debian packages mmdebstrap, systemd-container (for the boot), and for a foreign
# architecture qemu-user-static (binfmt_misc mounted). The log of every step is in DIR.log; the exit status is the first
# failure's.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$HERE")
suite=trixie
arch=$(dpkg --print-architecture)
dir=""
mirror=http://deb.debian.org/debian
kiosk=no
keep=no
reuse=no
boot=yes
while [ $# -gt 0 ]; do
    case "$1" in
        --suite) suite=$2; shift 2 ;;
        --arch) arch=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        --mirror) mirror=$2; shift 2 ;;
        --kiosk) kiosk=$2; shift 2 ;;
        --keep) keep=yes; shift ;;
        --reuse) reuse=yes; keep=yes; shift ;;
        --no-boot) boot=no; shift ;;
        *) echo "build-root.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
dir=${dir:-/var/tmp/booking-station-root-$suite-$arch}
[ "$(id -u)" = 0 ] || { echo "build-root.sh: run as root" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "build-root.sh: apt-get install mmdebstrap" >&2; exit 2; }

step() { printf '\n### %s  %s\n' "$(date -u +%H:%M:%S)" "$*"; }

mounted=()
# Never remove a root while anything is mounted inside it: /dev, /proc and the pip cache are
# bind mounts of this machine's own.
remove_root() {
    if findmnt -rn -o TARGET | grep -q "^$dir/"; then
        echo "build-root.sh: something is still mounted under $dir; not removing it" >&2
        return 1
    fi
    rm -rf --one-file-system "$dir"
}
booted=""
cleanup() {
    if [ -n "$booted" ] && kill -0 "$booted" 2>/dev/null; then
        kill "$booted"; wait "$booted" 2>/dev/null || true
    fi
    for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[i]}" 2>/dev/null || true; done
    if [ "$keep" = no ]; then remove_root || true; fi
}
trap cleanup EXIT
bind() { mkdir -p "$dir$2"; mount --bind "$1" "$dir$2"; mounted+=("$dir$2"); }

if [ "$arch" != "$(dpkg --print-architecture)" ]; then
    [ -e /proc/sys/fs/binfmt_misc/status ] \
        || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
        || { echo "build-root.sh: binfmt_misc cannot be mounted: $arch cannot run here" >&2; exit 2; }
    update-binfmts --enable >/dev/null 2>&1 || true
fi

if [ "$reuse" = yes ] && [ -f "$dir/etc/os-release" ]; then
    step "reusing the root in $dir (--reuse)"
    rm -rf "$dir/usr/src/booking-station" "$dir/usr/src/booking-station-next"
else
    step "mmdebstrap $suite $arch into $dir ($mirror)"
    [ ! -e "$dir" ] || remove_root
    mmdebstrap --mode=root --variant=minbase --arch="$arch" \
        --include=systemd,udev,dbus,ca-certificates,python3 \
        "$suite" "$dir" "$mirror"
fi
grep PRETTY_NAME "$dir/etc/os-release"
chroot "$dir" sh -c 'echo "glibc $(getconf GNU_LIBC_VERSION), $(python3 -V), $(uname -m)"'

step "copying the source tree to /usr/src/booking-station"
mkdir -p "$dir/usr/src/booking-station"
tar -C "$REPO" --exclude=./.venv --exclude=./.git --exclude=./demo-state \
    --exclude='__pycache__' --exclude='*.egg-info' --exclude=./build -cf - . \
    | tar -C "$dir/usr/src/booking-station" -xf -
# no daemon starts inside the root (there is no init running in it)
printf '#!/bin/sh\nexit 101\n' > "$dir/usr/sbin/policy-rc.d"; chmod +x "$dir/usr/sbin/policy-rc.d"
cp -L /etc/resolv.conf "$dir/etc/resolv.conf"
# This site's own certificate authorities (a proxy that inspects TLS, say) come along, so pip
# inside the root trusts what pip outside it trusts.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$dir/usr/local/share/ca-certificates/"
    chroot "$dir" update-ca-certificates >/dev/null
fi
bind /proc /proc; bind /dev /dev; bind /dev/pts /dev/pts
# Under qemu-user the host's /sys describes the host's CPUs: onnxruntime's cpuinfo reads it on
# import, takes the x86 topology for an ARM one and crashes (signal 11). Without /sys it warns
# and runs; a real arm64 machine has its own /sys.
if [ "$arch" = "$(dpkg --print-architecture)" ]; then bind /sys /sys; fi
mkdir -p /var/cache/booking-station-pip
bind /var/cache/booking-station-pip /root/.cache/pip
in_root() { chroot "$dir" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 PIP_CERT=/etc/ssl/certs/ca-certificates.crt PIP_RETRIES=10 "$@"; }

src=/usr/src/booking-station
step "install.sh (first run)"
in_root "$src/install/install.sh" --config "$src/install/smoke/station.toml" --kiosk "$kiosk"
step "install.sh (second run: must change nothing)"
before=$(in_root sh -c 'find /etc/booking-station /opt/booking-station /etc/systemd /etc/udev /etc/tmpfiles.d -printf "%p %m %u %g %s %T@\n" | sort | sha256sum')
second=$(in_root "$src/install/install.sh" --config "$src/install/smoke/station.toml" \
    --kiosk "$kiosk")
echo "$second"
grep -q "already installed" <<<"$second" || { echo "second install rebuilt the venv" >&2; exit 1; }
after=$(in_root sh -c 'find /etc/booking-station /opt/booking-station /etc/systemd /etc/udev /etc/tmpfiles.d -printf "%p %m %u %g %s %T@\n" | sort | sha256sum')
[ "$before" = "$after" ] || { echo "second install changed files" >&2; exit 1; }
echo "second run: no file changed"

step "systemd-analyze verify and security inside the root"
in_root systemd-analyze verify booking-station.service
[ "$kiosk" = yes ] && in_root systemd-analyze verify booking-station-kiosk.service
in_root systemd-analyze security --offline=true booking-station.service | tail -1
if in_root udevadm verify --help >/dev/null 2>&1; then   # systemd 254 and newer
    in_root udevadm verify --resolve-names=never /etc/udev/rules.d/60-booking-station-scanners.rules
fi

step "smoke: check-config, extract, one emulated booking"
in_root "$src/install/smoke.sh"

step "preparing an upgrade: a newer source tree, and its wheels for the offline root"
rm -rf "$dir$src-next"
cp -a "$dir$src" "$dir$src-next"
printf '# upgraded: %s\n' "$(date -u +%FT%TZ)" >> "$dir$src-next/appliance/__init__.py"
in_root sh -c "python3 -m venv /tmp/download && /tmp/download/bin/pip download -q \
    -d /var/cache/booking-station-wheels $src-next setuptools wheel pip"

# The bind mounts go before the root is booted: systemd-nspawn mounts its own.
for ((i=${#mounted[@]}-1; i>=0; i--)); do umount "${mounted[i]}"; done
mounted=()
nspawn=(systemd-nspawn -q -D "$dir" --register=no --keep-unit)
if [ "$boot" = yes ] && [ "$arch" = "$(dpkg --print-architecture)" ] \
        && command -v systemd-nspawn >/dev/null; then
    step "boot the root under systemd (systemd-nspawn, its own network): the installed service"
    "${nspawn[@]}" --private-network --console=passive -b >"$dir.boot.log" 2>&1 &
    booted=$!
    leader=""
    for _ in $(seq 120); do
        leader=$(pgrep -P "$booted" | head -n1 || true)
        if [ -n "$leader" ]; then
            state=$(nsenter -t "$leader" -a systemctl is-system-running --wait 2>/dev/null || true)
            case "$state" in running|degraded) echo "booted: $state"; break ;; esac
        fi
        sleep 1
    done
    status=0
    nsenter -t "$leader" -a /usr/src/booking-station/install/boot-check.sh || status=$?
    if [ "$status" = 0 ]; then
        step "upgrade while the station runs (the booted root has no network: wheels from disk)"
        nsenter -t "$leader" -a env PIP_NO_INDEX=1 PIP_FIND_LINKS=/var/cache/booking-station-wheels \
            "$src-next/install/install.sh" --source "$src-next" --kiosk "$kiosk" || status=$?
        nsenter -t "$leader" -a /usr/src/booking-station/install/boot-check.sh --after-upgrade \
            || status=$?
    fi
    nsenter -t "$leader" -a systemctl poweroff || kill "$booted"
    wait "$booted" || true
    [ "$status" = 0 ] || { echo "boot check failed (log: $dir.boot.log)" >&2; exit 1; }
else
    echo "(not booted: --no-boot, another architecture than this machine's, or no systemd-nspawn)"
fi

step "uninstall.sh (keeps the data)"
"${nspawn[@]}" /opt/booking-station/uninstall.sh
test -f "$dir/etc/booking-station/credentials/db-key"
test -d "$dir/var/lib/booking-station"
test ! -e "$dir/opt/booking-station"
test ! -e "$dir/etc/systemd/system/booking-station.service"
echo "uninstalled; /etc/booking-station and /var/lib/booking-station kept"
step "done: $suite $arch"
