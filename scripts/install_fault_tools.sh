#!/usr/bin/env bash
# Install what the fault suite (tests/faults/) uses: iproute2 (`ip netns`, veth, bridge, `tc`),
# iptables (partitions and `statistic` loss inside namespaces) and libfaketime (a skewed clock).
# Idempotent: does nothing when all are there; without apt-get or root it says so and leaves
# the fault tests to skip (they need root for network namespaces anyway).
set -euo pipefail
have_all() {
  command -v ip >/dev/null && command -v tc >/dev/null && command -v iptables >/dev/null \
    && ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1
}
if have_all; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "install_fault_tools: not root or no apt-get: install iproute2, iptables and faketime" \
       "yourself (the fault tests will skip without root and these tools)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends iproute2 iptables faketime
