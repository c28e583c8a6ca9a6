#!/usr/bin/env bash
# Build the local Docker test image `bacalhau-py/test:busybox` without any registry: a rootfs
# holding a static busybox (Debian package busybox-static) and its applet links, turned into
# an image with `docker import`. Tests, the benchmark and the README use it; the tag is also
# `bacalhau.executors.docker.TEST_IMAGE`.
#
# Idempotent: exits at once when the image exists (pass --force to rebuild). Needs a running
# Docker engine and a static busybox (BUSYBOX=/path/to/busybox, else /bin/busybox; installed
# with apt-get when missing and we are root).
set -euo pipefail
TAG="${TEST_IMAGE:-bacalhau-py/test:busybox}"
FORCE=0
[ "${1:-}" = "--force" ] && FORCE=1

if ! docker info >/dev/null 2>&1; then
  echo "build_test_image: no Docker engine answers; nothing built" >&2
  exit 1
fi
if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then
  exit 0
fi

BUSYBOX="${BUSYBOX:-}"
is_static() { [ -x "$1" ] && ! (ldd "$1" >/dev/null 2>&1); }
if [ -z "$BUSYBOX" ]; then
  for candidate in /bin/busybox /usr/bin/busybox; do
    if is_static "$candidate"; then BUSYBOX="$candidate"; break; fi
  done
fi
if [ -z "$BUSYBOX" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "build_test_image: installing busybox-static" >&2
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q busybox-static >/dev/null \
      || { apt-get -o DPkg::Lock::Timeout=300 update -q >/dev/null && \
           DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -q busybox-static >/dev/null; }
    BUSYBOX=/bin/busybox
  fi
fi
if [ -z "$BUSYBOX" ] || ! is_static "$BUSYBOX"; then
  echo "build_test_image: need a statically linked busybox (apt-get install busybox-static," \
       "or BUSYBOX=/path)" >&2
  exit 1
fi

ROOT="$(mktemp -d)"
trap 'rm -rf "$ROOT"' EXIT
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,etc,tmp,root,proc,sys,dev}
chmod 1777 "$ROOT/tmp"
cp "$BUSYBOX" "$ROOT/bin/busybox"
# one link per applet, at the path busybox itself names (/bin/sh, /usr/bin/wget, ...)
"$BUSYBOX" --list-full | while read -r applet; do
  [ "$applet" = "bin/busybox" ] && continue
  mkdir -p "$ROOT/$(dirname "$applet")"
  ln -sf /bin/busybox "$ROOT/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
  > "$ROOT/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$ROOT/etc/group"

tar -C "$ROOT" --numeric-owner --owner=0 --group=0 -c . | docker import \
  --change 'CMD ["/bin/sh"]' \
  --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'LABEL org.opencontainers.image.title=bacalhau-py-test-busybox' \
  - "$TAG" >/dev/null
echo "built $TAG"
