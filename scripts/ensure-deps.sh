#!/usr/bin/env bash
# Install the Debian packages p4jit builds with, if any is missing, and the
# C++ standard headers for kernels (Debian has no libstdc++ for riscv64-unknown-elf).
# Cheap when everything is there: one dpkg-query and one test, no network.
set -euo pipefail
PKGS=(
  gcc make pkg-config
  gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  libunicorn-dev libelf-dev libmd-dev libdeflate-dev
  clang libclang-rt-14-dev
)
# Where config/toolchain.yaml (profiles.debian.cxx_include_dirs) looks for them.
CXX_DIR=/usr/local/include/p4jit-c++/12
CXX_PKG=libstdc++-arm-none-eabi-dev

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
need_cxx=0
[ -f "$CXX_DIR/target/bits/c++config.h" ] || need_cxx=1
[ ${#missing[@]} -eq 0 ] && [ $need_cxx -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; elif [ ${#missing[@]} -gt 0 ]; then
    echo "p4jit: need root (or sudo) to install: ${missing[*]}" >&2; exit 1
  else
    # only C kernels then: a C++ kernel's build error says what is missing
    echo "p4jit: warning: need root (or sudo) to install the C++ headers for kernels in $CXX_DIR" >&2; exit 0
  fi
fi
export DEBIAN_FRONTEND=noninteractive
updated=0
if [ ${#missing[@]} -gt 0 ]; then
  echo "p4jit: installing missing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  updated=1
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ $need_cxx -eq 1 ]; then
  # GCC 12's libstdc++ headers, as Debian builds them for its other bare-metal
  # GCC 12 cross compiler. Only the headers are taken (no install of that
  # compiler): the generic ones, and bits/ of a 32-bit target without atomics.
  echo "p4jit: installing the C++ standard headers for kernels into $CXX_DIR (from $CXX_PKG)"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  chmod 755 "$tmp"
  if ! (cd "$tmp" && apt-get download -qq "$CXX_PKG" 2>/dev/null); then
    [ $updated -eq 1 ] || $SUDO apt-get update -qq
    (cd "$tmp" && apt-get download -qq "$CXX_PKG" 2>/dev/null) || {
      echo "p4jit: warning: could not download $CXX_PKG; C++ kernels will lack <cstdint>, <cmath>, ..." >&2
      exit 0; }
  fi
  dpkg-deb -x "$tmp"/*.deb "$tmp/x"
  src=$(ls -d "$tmp"/x/usr/include/newlib/c++/12* | head -1)
  bits="$src/arm-none-eabi/thumb/v6-m/nofp/bits"
  [ -f "$bits/c++config.h" ] || { echo "p4jit: $CXX_PKG has an unexpected layout ($bits)" >&2; exit 1; }
  $SUDO rm -rf "$CXX_DIR.new"
  $SUDO mkdir -p "$CXX_DIR.new/target"
  (cd "$src" && tar --exclude=./arm-none-eabi -cf - .) | $SUDO tar -xf - -C "$CXX_DIR.new"
  $SUDO cp -a "$bits" "$CXX_DIR.new/target/"
  $SUDO rm -rf "$CXX_DIR"
  $SUDO mv "$CXX_DIR.new" "$CXX_DIR"
fi
