#!/bin/sh
# Builds the operator image's root filesystem into DEST: the one command both the Dockerfile
# and the tests run, so the tests check exactly what the image ships.
#
#   image/build-rootfs.sh DEST
#
# DEST holds a statically linked kube9-operator (no libc or loader needed at run time), the
# system CA bundle for HTTPS to kube9-server, and passwd/group entries for the non-root user
# 65532. Nothing else: no shell, no package manager.
set -eu

dest=${1:?usage: image/build-rootfs.sh DEST}
cd "$(dirname "$0")/.."

target=$(rustc -vV | sed -n 's/^host: //p')
ca_bundle=/etc/ssl/certs/ca-certificates.crt
[ -s "$ca_bundle" ] || { echo "build-rootfs: $ca_bundle is missing; install the ca-certificates package" >&2; exit 1; }

# crt-static links glibc statically. With an explicit --target, RUSTFLAGS reach only the
# target's crates, not build scripts or proc macros, which must stay dynamic.
RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
    cargo build --release --locked -p kube9-operator --target "$target"
bin="${CARGO_TARGET_DIR:-target}/$target/release/kube9-operator"

rm -rf "$dest"
mkdir -p "$dest/etc/ssl/certs"
install -m 0555 "$bin" "$dest/kube9-operator"
install -m 0444 "$ca_bundle" "$dest/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dest/etc/passwd"
printf 'root:x:0:\nnonroot:x:65532:\n' >"$dest/etc/group"
chmod 0444 "$dest/etc/passwd" "$dest/etc/group"
echo "build-rootfs: $dest holds $(find "$dest" -type f | wc -l) files"
