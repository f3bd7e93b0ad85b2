#!/usr/bin/env bash
# Builds the "tiny tryout image": a compressed qcow2 (~13-15 MB) that boots under QEMU/KVM, from Debian packages
# only (no internet): the host's linux-image-*-amd64 kernel, busybox-static, syslinux/mtools/dosfstools/fdisk/
# e2fsprogs, qemu-utils. No loop devices, no mounts, no root needed.
#
#   MBR (syslinux mbr.bin) | p1 FAT16 "boot": SYSLINUX, vmlinuz, initrd | p2 ext4 label "zsroot": busybox root
#
# The initrd (busybox + the virtio/ext4 modules) loads the modules, finds the ext4 root by label and switch_roots.
# The root runs busybox init: mdev as hotplug helper (hot-plugged NICs get udhcpc, hot-plugged disks are announced),
# udhcpc on every NIC at boot, acpid mapping the ACPI power button to poweroff, a getty on tty1 (what VNC shows)
# and on ttyS0 (serial console); root has no password. Lines the tests read on the serial console:
#   zstack-tryout: booted            zstack-tryout: lease <if> <mac> <ip>/<mask>
#   zstack-tryout: disk add vdb      zstack-tryout: nic add eth1 <mac>   (and "remove" for both)
#   zstack-tryout: poweroff (acpi)
#
# Usage: build-tryout-image.sh [--out FILE] [--cache-dir DIR] [--kernel /boot/vmlinuz-X]
# Prints the path of the image. Cached under $ZSTACK_CACHE_DIR (default ~/.cache/zstack-ts) by a key made of this
# script and the kernel version: a second call returns at once.
set -euo pipefail

cache_root=${ZSTACK_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/zstack-ts}
out=""
kernel=""
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --cache-dir) cache_root=$2; shift 2 ;;
    --kernel) kernel=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
done

die() { echo "build-tryout-image: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1 || die "$1 is missing (apt-get install $2)"; }
need busybox busybox-static
need mkfs.vfat dosfstools
need mcopy mtools
need syslinux syslinux
need sfdisk fdisk
need mke2fs e2fsprogs
need qemu-img qemu-utils
need cpio cpio
busybox_bin=$(command -v busybox)
file "$busybox_bin" 2>/dev/null | grep dynamically >/dev/null && die "$busybox_bin is dynamically linked (apt-get install busybox-static)"

if [ -z "$kernel" ]; then
  kernel=$(ls -1 /boot/vmlinuz-*-amd64 2>/dev/null | sort -V | tail -n1 || true)
  [ -n "$kernel" ] || die "no /boot/vmlinuz-*-amd64 (apt-get install linux-image-amd64)"
fi
[ -r "$kernel" ] || die "cannot read $kernel (run as root or pass --kernel)"
kver=${kernel##*/vmlinuz-}
moddir=/lib/modules/$kver
[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep for kernel $kver"
mbr=""
for f in /usr/lib/syslinux/mbr/mbr.bin /usr/lib/SYSLINUX/mbr.bin; do [ -f "$f" ] && { mbr=$f; break; }; done
[ -n "$mbr" ] || die "no syslinux mbr.bin (apt-get install syslinux-common)"

key=$( { cat "$0"; echo "$kver"; busybox 2>&1 | sed -n 1p; } | sha256sum | cut -c1-16)
cached=$cache_root/tryout-image/tryout-$key.qcow2
exec 3>&1 1>&2 # only the image path goes to stdout
if [ ! -f "$cached" ]; then
  mkdir -p "$cache_root/tryout-image"
  work=$(mktemp -d "$cache_root/tryout-image/build.XXXXXX")
  trap 'rm -rf "$work"' EXIT

  # ---------------------------------------------------------------- modules (with their dependencies, in order)
  wanted="kernel/drivers/virtio/virtio_pci.ko kernel/drivers/block/virtio_blk.ko kernel/drivers/net/virtio_net.ko
    kernel/arch/x86/crypto/crc32c-intel.ko kernel/crypto/crc32c_generic.ko kernel/fs/ext4/ext4.ko
    kernel/drivers/acpi/button.ko kernel/drivers/input/evdev.ko"
  declare -A seen=()
  order=()
  add_mod() {
    local m=$1 deps d
    [ -n "${seen[$m]:-}" ] && return 0
    seen[$m]=1
    deps=$(grep -E "^${m//./\\.}:" "$moddir/modules.dep" | cut -d: -f2 || true)
    for d in $deps; do add_mod "$d"; done
    order+=("$m")
  }
  for m in $wanted; do [ -f "$moddir/$m" ] && add_mod "$m"; done

  populate_modules() { # $1 = root dir
    mkdir -p "$1/lib/modules"
    : > "$1/lib/modules/load-order"
    for m in "${order[@]}"; do
      install -D -m 0644 "$moddir/$m" "$1/lib/modules/$(basename "$m")"
      basename "$m" >> "$1/lib/modules/load-order"
    done
  }
  populate_busybox() { # $1 = root dir
    mkdir -p "$1/bin" "$1/sbin" "$1/usr/bin" "$1/usr/sbin"
    install -m 0755 "$busybox_bin" "$1/bin/busybox"
    local p
    for p in $(busybox --list-full); do
      [ "$p" = bin/busybox ] && continue
      [ -e "$1/$p" ] || ln -s /bin/busybox "$1/$p"
    done
  }

  # ---------------------------------------------------------------- initrd
  ird=$work/initrd
  mkdir -p "$ird"/{dev,proc,sys,newroot}
  populate_busybox "$ird"
  populate_modules "$ird"
  cat > "$ird/init" <<'EOF'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /lib/modules/load-order); do insmod /lib/modules/$m 2>/dev/null; done
root=""
for i in $(seq 1 300); do
  root=$(findfs LABEL=zsroot 2>/dev/null) && [ -n "$root" ] && break
  sleep 0.1
done
[ -n "$root" ] || { echo "zstack-tryout: no root file system labelled zsroot"; exec sh; }
mount -t ext4 -o rw "$root" /newroot || { echo "zstack-tryout: cannot mount $root"; exec sh; }
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
EOF
  chmod 0755 "$ird/init"
  (cd "$ird" && find . | sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 > "$work/initrd.gz"

  # ---------------------------------------------------------------- root file system
  rt=$work/root
  mkdir -p "$rt"/{dev,proc,sys,tmp,run,root,mnt,var/run,var/log,etc/init.d,etc/acpi/PWRF,usr/share/udhcpc}
  chmod 1777 "$rt/tmp"
  populate_busybox "$rt"
  populate_modules "$rt"
  echo 'root::0:0:root:/root:/bin/sh' > "$rt/etc/passwd"
  echo 'root:x:0:' > "$rt/etc/group"
  echo 'zstack-tryout' > "$rt/etc/hostname"
  printf 'ZStack tryout image (busybox) \\n \\l -- log in as root, no password\n\n' > "$rt/etc/issue"
  printf '/bin/sh\n' > "$rt/etc/shells"
  cat > "$rt/etc/inittab" <<'EOF'
::sysinit:/etc/init.d/rcS
tty1::respawn:/sbin/getty 38400 tty1
ttyS0::respawn:/sbin/getty -L 115200 ttyS0 vt100
::ctrlaltdel:/sbin/reboot
::shutdown:/etc/init.d/rcK
EOF
  cat > "$rt/etc/init.d/rcS" <<'EOF'
#!/bin/sh
say() { echo "zstack-tryout: $*" > /dev/ttyS0; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
mount -o remount,rw /
hostname -F /etc/hostname
mdev -d
mdev -s
ifconfig lo 127.0.0.1 up
for n in /sys/class/net/eth*; do [ -e "$n" ] && /etc/net-hotplug add "${n##*/}"; done
acpid -c /etc/acpi
say booted
EOF
  cat > "$rt/etc/init.d/rcK" <<'EOF'
#!/bin/sh
killall udhcpc acpid 2>/dev/null
sync
mount -o remount,ro / 2>/dev/null
EOF
  cat > "$rt/etc/mdev.conf" <<'EOF'
SUBSYSTEM=net;eth[0-9]+ 0:0 600 */etc/net-hotplug
vd[b-z] 0:0 660 */etc/disk-hotplug
EOF
  cat > "$rt/etc/net-hotplug" <<'EOF'
#!/bin/sh
# mdev passes ACTION and MDEV; rcS passes "add ethN".
action=${1:-$ACTION}; dev=${2:-$MDEV}
say() { echo "zstack-tryout: $*" > /dev/ttyS0; }
case "$action" in
  add)
    mac=$(cat /sys/class/net/$dev/address 2>/dev/null)
    say "nic add $dev $mac"
    ifconfig "$dev" up
    # In the foreground of a background job: never blocks boot, retries for as long as the NIC lives.
    udhcpc -i "$dev" -s /usr/share/udhcpc/default.script -p /var/run/udhcpc.$dev.pid -f -t 5 -T 1 -A 2 -S >/dev/null 2>&1 &
    ;;
  remove)
    say "nic remove $dev"
    [ -f /var/run/udhcpc.$dev.pid ] && kill "$(cat /var/run/udhcpc.$dev.pid)" 2>/dev/null
    ;;
esac
exit 0
EOF
  cat > "$rt/etc/disk-hotplug" <<'EOF'
#!/bin/sh
echo "zstack-tryout: disk $ACTION $MDEV $(cat /sys/class/block/$MDEV/size 2>/dev/null)" > /dev/ttyS0
EOF
  cat > "$rt/usr/share/udhcpc/default.script" <<'EOF'
#!/bin/sh
say() { echo "zstack-tryout: $*" > /dev/ttyS0; }
case "$1" in
  deconfig) ifconfig "$interface" 0.0.0.0 ;;
  bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" ${broadcast:+broadcast $broadcast}
    if [ -n "$router" ] && [ "$interface" = eth0 ]; then
      while route del default gw 0.0.0.0 dev "$interface" 2>/dev/null; do :; done
      for r in $router; do route add default gw "$r" dev "$interface"; break; done
    fi
    [ -n "$dns" ] && { : > /etc/resolv.conf; for d in $dns; do echo "nameserver $d" >> /etc/resolv.conf; done; }
    say "lease $interface $(cat /sys/class/net/$interface/address) $ip/${subnet:-255.255.255.0}${router:+ router $router}"
    ;;
esac
exit 0
EOF
  cat > "$rt/etc/acpi/PWRF/00000080" <<'EOF'
#!/bin/sh
echo "zstack-tryout: poweroff (acpi)" > /dev/ttyS0
poweroff
EOF
  chmod 0755 "$rt/etc/init.d/rcS" "$rt/etc/init.d/rcK" "$rt/etc/net-hotplug" "$rt/etc/disk-hotplug" \
    "$rt/usr/share/udhcpc/default.script" "$rt/etc/acpi/PWRF/00000080"

  # ---------------------------------------------------------------- partitions, assembled without loop devices
  kbytes=$(( ($(stat -c %s "$kernel") + $(stat -c %s "$work/initrd.gz")) / 1024 ))
  boot_mb=$(( kbytes / 1024 + 4 ))
  root_mb=24
  mkfs.vfat -n BOOT -C "$work/boot.img" $(( boot_mb * 1024 )) >/dev/null
  cat > "$work/syslinux.cfg" <<'EOF'
DEFAULT tryout
TIMEOUT 1
PROMPT 0
LABEL tryout
  LINUX /vmlinuz
  INITRD /initrd.gz
  APPEND console=tty1 console=ttyS0,115200n8 quiet loglevel=3 panic=5
EOF
  mcopy -i "$work/boot.img" "$kernel" ::/vmlinuz
  mcopy -i "$work/boot.img" "$work/initrd.gz" ::/initrd.gz
  mcopy -i "$work/boot.img" "$work/syslinux.cfg" ::/syslinux.cfg
  syslinux --install "$work/boot.img"
  mke2fs -q -t ext4 -L zsroot -E root_owner=0:0 -O ^has_journal -d "$rt" "$work/root.img" "${root_mb}M"

  start1=2048
  size1=$(( boot_mb * 2048 ))
  start2=$(( start1 + size1 ))
  size2=$(( root_mb * 2048 ))
  total=$(( start2 + size2 ))
  truncate -s $(( total * 512 )) "$work/disk.raw"
  printf 'label: dos\nstart=%d, size=%d, type=6, bootable\nstart=%d, size=%d, type=83\n' \
    $start1 $size1 $start2 $size2 | sfdisk -q "$work/disk.raw"
  dd if="$mbr" of="$work/disk.raw" bs=440 count=1 conv=notrunc status=none
  dd if="$work/boot.img" of="$work/disk.raw" bs=512 seek=$start1 conv=notrunc status=none
  dd if="$work/root.img" of="$work/disk.raw" bs=512 seek=$start2 conv=notrunc status=none
  qemu-img convert -c -O qcow2 "$work/disk.raw" "$work/tryout.qcow2"
  mv "$work/tryout.qcow2" "$cached"
fi

if [ -n "$out" ]; then
  cp "$cached" "$out"
  echo "$out" >&3
else
  echo "$cached" >&3
fi
