#!/usr/bin/env bash
# Install the Debian packages a target needs, skipping what is already there.
#   scripts/system-deps.sh runtime   python venv support, node + npm (portal assets)
#   scripts/system-deps.sh test      runtime + PostgreSQL server, chromium
#   scripts/system-deps.sh bench     test + wrk
set -euo pipefail
want=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || want+=("$2"); }
need_pkg() { dpkg -s "$1" >/dev/null 2>&1 || want+=("$1"); }

python3 -c 'import venv, ensurepip' 2>/dev/null || want+=(python3-venv)
need_cmd make make
need_cmd node nodejs
need_cmd npm npm
# libvirt-python compiles against libvirt's headers
need_cmd gcc gcc
need_cmd pkg-config pkg-config
need_pkg libvirt-dev
need_pkg python3-dev
case "${1:-runtime}" in
  bench) need_cmd wrk wrk ;&
  test)
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || want+=(postgresql)
    need_cmd chromium chromium
    # real VMs for the libvirt driver's tests: libvirtd, QEMU (TCG), a kernel and busybox
    need_cmd libvirtd libvirt-daemon-system
    need_cmd qemu-system-x86_64 qemu-system-x86
    need_cmd qemu-img qemu-utils
    need_pkg busybox-static
    # the data plane's tests: hosts and VMs in network namespaces
    need_cmd nft nftables
    need_cmd ping iputils-ping
    need_cmd tcpdump tcpdump ;;
  runtime) ;;
  *) echo "usage: $0 runtime|test|bench" >&2; exit 2 ;;
esac
[ ${#want[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
echo "installing Debian packages: ${want[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${want[@]}"
