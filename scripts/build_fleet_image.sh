#!/usr/bin/env bash
# Build the lab's "VM" image: Debian 12 minbase with systemd as PID 1.
# No registry is needed: debootstrap from the Debian mirror, then docker import.
#
#   scripts/build_fleet_image.sh [TAG]
#
# docker import (20.10) cannot set STOPSIGNAL: lab_up sets SIGRTMIN+3 per container.
# The image carries a label with the hash of this script, so bootstrap can
# tell a stale image from a current one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"

TAG=${1:-$FLEET_IMAGE}
MIRROR=${FLEET_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${FLEET_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
RECIPE=$(sha256sum "${BASH_SOURCE[0]}" | cut -c1-16)
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,iproute2,procps,curl,ca-certificates,sudo

if [ "$(id -u)" != 0 ]; then
    echo "build_fleet_image: debootstrap needs root" >&2
    exit 1
fi

WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/fleet-image.XXXXXX")
cleanup() { rm -rf "$WORK"; }
trap cleanup EXIT
ROOTFS="$WORK/rootfs"

echo "[image] debootstrap bookworm into $ROOTFS (about a minute)" >&2
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    exit 1
}

cat >"$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $SECURITY_MIRROR bookworm-security main
SOURCES

# Each container must get its own machine id at first boot.
: >"$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"

# Units that only make sense on real hardware or a console fail in a
# container and leave systemd "degraded"; mask them.
for unit in \
    systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \
    systemd-udev-trigger.service systemd-udev-settle.service \
    systemd-modules-load.service sys-kernel-config.mount sys-kernel-debug.mount \
    sys-kernel-tracing.mount sys-fs-fuse-connections.mount \
    systemd-remount-fs.service getty.target console-getty.service \
    systemd-logind.service systemd-firstboot.service \
    apt-daily.timer apt-daily-upgrade.timer; do
    ln -sf /dev/null "$ROOTFS/etc/systemd/system/$unit"
done
ln -sf /lib/systemd/system/multi-user.target "$ROOTFS/etc/systemd/system/default.target"

# Keep the image small: package lists are refreshed by the roles anyway.
chroot "$ROOTFS" apt-get clean
rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/*
# Ansible's apt module judges cache age by this directory's mtime: make the
# emptied cache look old so `cache_valid_time` triggers an update.
touch -d @0 "$ROOTFS/var/lib/apt/lists"

echo "[image] importing as $TAG" >&2
tar -C "$ROOTFS" -c . | docker import \
    --change 'CMD ["/lib/systemd/systemd"]' \
    --change 'ENV container=docker' \
    --change "LABEL org.fleet-rollout.recipe=$RECIPE" \
    - "$TAG" >/dev/null
echo "[image] built $TAG ($(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1/1e6}'))" >&2
