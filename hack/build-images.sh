#!/usr/bin/env bash
# Builds the images the local cluster and the tests need, from Debian
# packages and this repository, without any registry or Docker engine, as
# archives in the cache folder. Prints "REF ARCHIVE" lines on stdout.
#
#   localhost/overseer/pause:3.10    the pod sandbox, upstream's pause.c built static
#   localhost/overseer/testbox:dev   busybox (static) for small test pods
#   localhost/overseer/library:dev   Debian + python3 + the Overseer library (library-image/)
#   localhost/overseer/operator:dev  Debian + python3 venv + git + this checkout's wheel (operator/Dockerfile)
#   localhost/overseer/local-path-provisioner:v0.0.30
#                                    the local cluster's storage provisioner (hack/build-provisioner.sh)
#   localhost/overseer/traefik:v3.6.12
#                                    the local cluster's ingress controller (hack/build-traefik.sh)
#   localhost/overseer/store:v1.8.0  the chart's bundled S3 store: versitygw (hack/build-s3-server.sh)
#                                    and busybox (store-image/Dockerfile)
#
# Python dependencies come from PyPI through this machine's pip (.venv, so its
# index and certificate settings apply); run `make deps` first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
. "$here/lib.sh"

cache=${OVERSEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/overseer}
out="$cache/images"
mkdir -p "$out"
# Two builds at once (two checkouts, one cache) would debootstrap into the same
# temporary root and remove it under each other: take turns.
exec 9>"$cache/.build-images.lock"
flock 9
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Keep in step with library-image/Dockerfile (same packages, same tree, same user).
LIBRARY_PACKAGES=python3,ca-certificates,procps
# Keep in step with operator/Dockerfile.
OPERATOR_PACKAGES=python3,python3-venv,git,openssh-client,ca-certificates
PATH_ENV=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# tree_hash prints a short digest of files' paths, modes and contents.
tree_hash() {
  (cd "$top" && find "$@" -type f -not -path '*/__pycache__/*' -print0 | sort -z |
    xargs -0 -r stat -c '%n %a' ; cd "$top" && find "$@" -type f -not -path '*/__pycache__/*' -print0 | sort -z | xargs -0 -r cat) |
    sha256sum | cut -c1-12
}

# pack REF KEY ROOTFS [oci_archive.py options | --config-json JSON]: archive ROOTFS unless
# an archive for KEY exists. --config-json gives the image config whole, for an
# entrypoint with dashes in it (python -m ...) that the options cannot carry.
pack() {
  local ref=$1 key=$2 rootfs=$3; shift 3
  local name=${ref#localhost/overseer/}; name=${name%%:*}
  local archive="$out/$name-$key.tar"
  if [[ ! -e $archive ]]; then
    info "packing $ref"
    if [[ ${1:-} == --config-json ]]; then
      python3 -c 'import json, sys; sys.path.insert(0, sys.argv[1]); import oci_archive
oci_archive.build(sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5]))' \
        "$here" "$rootfs" "$ref" "$archive.tmp" "$2"
    else
      python3 "$here/oci_archive.py" "$rootfs" "$ref" "$archive.tmp" "$@"
    fi
    mv "$archive.tmp" "$archive"
    find "$out" -name "$name-*.tar" -not -name "$(basename "$archive")" -delete
  fi
  echo "$ref $archive"
}

# debian_base DIR PACKAGES WHAT: a debootstrap minbase root filesystem with PACKAGES, made once.
debian_base() {
  local dir=$1 packages=$2 what=$3
  [[ -d $dir ]] && return
  step "bootstrapping a Debian $DEBIAN_SUITE root filesystem for the $what image (first run only, a few minutes)"
  rm -rf "$dir.tmp"
  debootstrap --variant=minbase --include="$packages" "$DEBIAN_SUITE" "$dir.tmp" "$DEBIAN_MIRROR" |
    awk '/^I: (Retrieving|Extracting|Installing|Configuring) / && $2 != last { print "    " tolower($2) " packages..."; fflush(); last = $2 }' >&2
  rm -rf "$dir.tmp"/var/cache/apt/archives/*.deb "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/var/log/*
  mv "$dir.tmp" "$dir"
}

# in_root DIR COMMAND...: run COMMAND inside DIR with a clean environment (no host PIP_* settings).
in_root() {
  local dir=$1; shift
  chroot "$dir" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}

# prune PREFIX KEEP: remove cached root filesystems PREFIX-* other than KEEP.
prune() {
  find "$cache/rootfs" -maxdepth 1 -name "$(basename "$1")-*" -not -name "$(basename "$2")" \
    -exec rm -rf {} +
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

# local-path-provisioner: its static binary (hack/build-provisioner.sh) and a user to run as.
provisioner=$("$here/build-provisioner.sh")
provisioner_version=$(basename "$(dirname "$provisioner")"); provisioner_version=${provisioner_version%%-*}
key=$(cat "$provisioner" "$0" | sha256sum | cut -c1-12)
if [[ ! -e $out/local-path-provisioner-$key.tar ]]; then
  mkdir -p "$scratch/provisioner/usr/local/bin" "$scratch/provisioner/etc"
  cp "$provisioner" "$scratch/provisioner/usr/local/bin/local-path-provisioner"
  printf 'nobody:x:65534:65534:nobody:/:/bin/false\n' >"$scratch/provisioner/etc/passwd"
  printf 'nobody:x:65534:\n' >"$scratch/provisioner/etc/group"
fi
pack "localhost/overseer/local-path-provisioner:$provisioner_version" "$key" "$scratch/provisioner" \
  --entrypoint /usr/local/bin/local-path-provisioner --user 65534:65534 --env "PATH=/usr/local/bin"

# traefik: the local cluster's ingress controller (hack/build-traefik.sh, deployed by
# hack/ingress.sh), its static binary and a user to run as.
traefik=$("$here/build-traefik.sh")
traefik_version=$(basename "$(dirname "$traefik")"); traefik_version=${traefik_version%%-*}
key=$(cat "$traefik" "$0" | sha256sum | cut -c1-12)
if [[ ! -e $out/traefik-$key.tar ]]; then
  mkdir -p "$scratch/traefik/usr/local/bin" "$scratch/traefik/etc" "$scratch/traefik/tmp"
  chmod 1777 "$scratch/traefik/tmp"
  cp "$traefik" "$scratch/traefik/usr/local/bin/traefik"
  printf 'nobody:x:65534:65534:nobody:/:/bin/false\n' >"$scratch/traefik/etc/passwd"
  printf 'nobody:x:65534:\n' >"$scratch/traefik/etc/group"
fi
pack "localhost/overseer/traefik:$traefik_version" "$key" "$scratch/traefik" \
  --entrypoint /usr/local/bin/traefik --user 65534:65534 --env "PATH=/usr/local/bin"

# store: versitygw (hack/build-s3-server.sh), the C library it links against when built
# with cgo, and busybox-static for the chart's init container (mkdir of the bucket).
store_server=$("$here/build-s3-server.sh" | tail -1)
store_version=$(basename "$(dirname "$store_server")"); store_version=${store_version#versitygw-}
store_version=${store_version%%-*}
key=$( (cat "$store_server" /bin/busybox "$0"; dpkg-query -W -f='${Version}' libc6) | sha256sum | cut -c1-12)
if [[ ! -e $out/store-$key.tar ]]; then
  step "building the store image"
  root="$scratch/store"
  mkdir -p "$root/usr/local/bin" "$root/bin" "$root/etc" "$root/tmp" "$root/data"
  chmod 1777 "$root/tmp"
  cp "$store_server" "$root/usr/local/bin/versitygw"
  # A dynamic binary gets the very libraries (and loader) it was linked with here.
  for lib in $(ldd "$store_server" 2>/dev/null | grep -o '/[^ ]*' || true); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do
    [[ $applet == busybox ]] || ln -s busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/root:/bin/sh\noverseer:x:10001:10001:overseer:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\noverseer:x:10001:\n' >"$root/etc/group"
fi
pack "localhost/overseer/store:$store_version" "$key" "$scratch/store" \
  --entrypoint /usr/local/bin/versitygw --user 10001:10001 --env "PATH=/usr/local/bin:/bin"

# library: a Debian base made once by debootstrap, plus library-image/ copied in.
base_key=$(echo "$DEBIAN_SUITE $LIBRARY_PACKAGES v2" | sha256sum | cut -c1-12)
base="$cache/rootfs/library-base-$base_key"
debian_base "$base" "$LIBRARY_PACKAGES" library
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
    python3 -m compileall -q --invalidation-mode unchecked-hash /opt/overseer/library/overseer_library'
  # The operator resolves user and group names with its own copy of these two files
  # (operator/overseer/core/accounts.py): refuse an image they no longer describe.
  "$top/.venv/bin/python" "$here/check-accounts.py" "$scratch/library/etc/passwd" "$scratch/library/etc/group"
fi
pack localhost/overseer/library:dev "$key" "$scratch/library" \
  --entrypoint /opt/overseer/library/bin/overseer-supervisor --user 10001:10001 \
  --env "$PATH_ENV:/opt/overseer/library/bin"

# operator: three cached steps, so that a code change only repacks.
#   1. a Debian base made once by debootstrap (the packages operator/Dockerfile installs);
#   2. the venv with the dependencies from pyproject.toml, redone only when that file changes;
#   3. this checkout's wheel installed on top, when operator/, api/, the library or
#      pyproject.toml change.
# The same file tree operator/Dockerfile produces.
op_base_key=$(echo "$DEBIAN_SUITE $OPERATOR_PACKAGES v1" | sha256sum | cut -c1-12)
op_base="$cache/rootfs/operator-base-$op_base_key"
debian_base "$op_base" "$OPERATOR_PACKAGES" operator
prune "$cache/rootfs/operator-base" "$op_base"

venv_python="$top/.venv/bin/python"
[[ -x $venv_python ]] || die "the operator image is built with the project's .venv: run make deps first"
deps_key=$(cat <(echo "$op_base_key v2") "$top/pyproject.toml" | sha256sum | cut -c1-12)
deps="$cache/rootfs/operator-deps-$deps_key"
if [[ ! -d $deps ]]; then
  step "installing the operator's Python dependencies (once per pyproject.toml)"
  rm -rf "$deps.tmp"
  cp -a "$op_base" "$deps.tmp"
  mkdir -p "$scratch/wheels"
  "$venv_python" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))' \
    "$top/pyproject.toml" >"$scratch/requirements.txt"
  # This machine's pip fetches (its index, proxy and certificate settings apply); the
  # image's pip installs offline. Both are CPython 3.11 on Debian bookworm, so wheels fit.
  info "fetching wheels from PyPI"
  "$venv_python" -m pip wheel -q --disable-pip-version-check -w "$scratch/wheels" -r "$scratch/requirements.txt"
  cp -r "$scratch/wheels" "$scratch/requirements.txt" "$deps.tmp/tmp/"
  info "installing them into /opt/overseer/venv"
  # Like debian:bookworm-slim (operator/Dockerfile's base): no documentation, manuals or translations.
  find "$deps.tmp/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$deps.tmp/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$deps.tmp"/usr/share/{man,groff,info,lintian,linda,locale}/*
  in_root "$deps.tmp" sh -c '
    set -e
    python3 -m venv /opt/overseer/venv
    /opt/overseer/venv/bin/pip install -q --disable-pip-version-check --no-cache-dir \
      --no-index --find-links /tmp/wheels -r /tmp/requirements.txt'
  rm -rf "$deps.tmp/tmp/wheels" "$deps.tmp/tmp/requirements.txt" "$deps.tmp/root/.cache"
  mv "$deps.tmp" "$deps"
fi
prune "$cache/rootfs/operator-deps" "$deps"

key=$(echo "$deps_key $(tree_hash operator/overseer api/overseer_api library-image/overseer_library pyproject.toml hack/build-images.sh)" |
  sha256sum | cut -c1-12)
if [[ ! -e $out/operator-$key.tar ]]; then
  step "building the operator image"
  # Build the wheel from a copy, so that no build/ or *.egg-info lands in the shared tree.
  mkdir -p "$scratch/src" "$scratch/dist"
  (cd "$top" && cp -r pyproject.toml operator api library-image "$scratch/src/")
  find "$scratch/src" -name __pycache__ -prune -exec rm -rf {} +
  "$top/.venv/bin/pip" wheel -q --disable-pip-version-check --no-deps -w "$scratch/dist" "$scratch/src" 2>/dev/null ||
    "$top/.venv/bin/pip" wheel --disable-pip-version-check --no-deps -w "$scratch/dist" "$scratch/src"
  cp -a "$deps" "$scratch/operator"
  cp "$scratch"/dist/overseer-*.whl "$scratch/operator/tmp/"
  in_root "$scratch/operator" sh -c '
    set -e
    /opt/overseer/venv/bin/pip install -q --disable-pip-version-check --no-cache-dir \
      --no-index --no-deps /tmp/overseer-*.whl
    rm -f /tmp/overseer-*.whl
    getent group overseer >/dev/null || groupadd --gid 10001 overseer
    getent passwd overseer >/dev/null || useradd --uid 10001 --gid 10001 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin overseer
    install -d -o 10001 -g 10001 /var/cache/overseer
    # The archive stores every file with mtime 0, which makes timestamp-checked .pyc
    # files stale: Python would recompile on every start, in memory (read-only root).
    python3 -m compileall -q -j 0 --invalidation-mode unchecked-hash \
      /usr/lib/python3.11 /usr/lib/python3/dist-packages /opt/overseer/venv/lib'
  rm -rf "$scratch/operator/root/.cache"
fi
pack localhost/overseer/operator:dev "$key" "$scratch/operator" --config-json "$(cat <<JSON
{"Entrypoint": ["/opt/overseer/venv/bin/python", "-m", "overseer.operator"],
 "Env": ["PATH=/opt/overseer/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
         "HOME=/tmp", "PYTHONUNBUFFERED=1"],
 "User": "10001:10001", "WorkingDir": "/tmp"}
JSON
)"
