#!/usr/bin/env bash
# Builds the images the local cluster and the tests need, from Debian
# packages and this repository, without any registry or Docker engine, as
# archives in the cache folder. Prints "REF ARCHIVE" lines on stdout.
#
#   localhost/overseer/pause:3.10    the pod sandbox, upstream's pause.c built static
#   localhost/overseer/testbox:dev   busybox (static) for small test pods
#   localhost/overseer/library:dev   Debian + python3 + the Overseer library (library-image/)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
out="$cache/images"
mkdir -p "$out"
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Keep in step with library-image/Dockerfile (same packages, same tree, same user).
LIBRARY_PACKAGES=python3,ca-certificates,procps
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# tree_hash prints a short digest of files' paths, modes and contents.
tree_hash() {
  (cd "$top" && find "$@" -type f -not -path '*/__pycache__/*' -print0 | sort -z |
    xargs -0 -r stat -c '%n %a' ; cd "$top" && find "$@" -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 -r cat) |
    sha256sum | cut -c1-12
}

# pack REF KEY ROOTFS [oci_archive.py options]: archive ROOTFS unless an archive for KEY exists.
pack() {
  local ref=$1 key=$2 rootfs=$3; shift 3
  local name=${ref#localhost/overseer/}; name=${name%%:*}
  local archive="$out/$name-$key.tar"
  if [[ ! -e $archive ]]; then
    info "packing $ref"
    python3 "$here/oci_archive.py" "$rootfs" "$ref" "$archive.tmp" "$@"
    mv "$archive.tmp" "$archive"
    find "$out" -name "$name-*.tar" -not -name "$(basename "$archive")" -delete
  fi
  echo "$ref $archive"
}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

# pause: the source ships inside the k8s.io/kubernetes module the cluster is built from.
kube_src=$(cd "$here/kube-build" && go list -m -f '{{.Dir}}' k8s.io/kubernetes 2>/dev/null || true)
[[ -n $kube_src && -f $kube_src/build/pause/linux/pause.c ]] ||
  (cd "$here/kube-build" && go mod download k8s.io/kubernetes) && kube_src=$(cd "$here/kube-build" && go list -m -f '{{.Dir}}' k8s.io/kubernetes)
key=$(sha256sum "$kube_src/build/pause/linux/pause.c" | cut -c1-12)
if [[ ! -e $out/pause-$key.tar ]]; then
  step "building the pause image"
  mkdir -p "$scratch/pause"
  gcc -Os -static -DVERSION=v3.10-overseer -o "$scratch/pause/pause" "$kube_src/build/pause/linux/pause.c"
  strip "$scratch/pause/pause"
fi
pack localhost/overseer/pause:3.10 "$key" "$scratch/pause" --entrypoint /pause --user 65535:65535

# testbox: busybox-static with its applets linked.
key=$(dpkg-query -W -f='${Version}' busybox-static | sha256sum | cut -c1-12)
if [[ ! -e $out/testbox-$key.tar ]]; then
  step "building the testbox image"
  mkdir -p "$scratch/testbox/bin" "$scratch/testbox/tmp" "$scratch/testbox/etc"
  chmod 1777 "$scratch/testbox/tmp"
  cp /bin/busybox "$scratch/testbox/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$scratch/testbox/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$scratch/testbox/etc/passwd"
  printf 'root:x:0:\nnobody:x:65534:\n' >"$scratch/testbox/etc/group"
fi
pack localhost/overseer/testbox:dev "$key" "$scratch/testbox" --cmd sh --env "PATH=/bin"

# library: a Debian base made once by debootstrap, plus library-image/ copied in.
base_key=$(echo "$DEBIAN_SUITE $LIBRARY_PACKAGES v2" | sha256sum | cut -c1-12)
base="$cache/rootfs/library-base-$base_key"
if [[ ! -d $base ]]; then
  step "bootstrapping a Debian $DEBIAN_SUITE root filesystem for the library image (first run only, a few minutes)"
  rm -rf "$base.tmp"
  debootstrap --variant=minbase --include="$LIBRARY_PACKAGES" "$DEBIAN_SUITE" "$base.tmp" "$DEBIAN_MIRROR" |
    awk '/^I: (Retrieving|Extracting|Installing|Configuring) / && $2 != last { print "    " tolower($2) " packages..."; fflush(); last = $2 }' >&2
  rm -rf "$base.tmp"/var/cache/apt/archives/*.deb "$base.tmp"/var/lib/apt/lists/* "$base.tmp"/var/log/*
  mv "$base.tmp" "$base"
fi
key=$(echo "$base_key $(tree_hash library-image/overseer_library library-image/bin hack/build-images.sh)" | sha256sum | cut -c1-12)
if [[ ! -e $out/library-$key.tar ]]; then
  step "building the library image"
  cp -a "$base" "$scratch/library"
  # The same file tree library-image/Dockerfile produces.
  mkdir -p "$scratch/library/opt/overseer/library"
  cp -r "$top/library-image/overseer_library" "$top/library-image/bin" "$scratch/library/opt/overseer/library/"
  find "$scratch/library/opt/overseer" -name __pycache__ -prune -exec rm -rf {} +
  chroot "$scratch/library" sh -c '
    set -e
    getent group overseer >/dev/null || groupadd --gid 10001 overseer
    getent passwd overseer >/dev/null || useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin overseer
    mkdir -p /overseer/repo-bin
    chmod -R u=rwX,go=rX /opt/overseer/library
    chmod 0755 /opt/overseer/library/bin/*
    python3 -m compileall -q /opt/overseer/library/overseer_library'
fi
pack localhost/overseer/library:dev "$key" "$scratch/library" \
  --entrypoint /opt/overseer/library/bin/overseer-supervisor --user 10001:10001 \
  --env "$PATH_ENV:/opt/overseer/library/bin"
