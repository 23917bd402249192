#!/usr/bin/env bash
# Build OpenCV's Python module for the Debian package, on and for this machine's release: only the
# modules faceunlock calls (core, imgproc, imgcodecs, videoio, video, features), linked against
# Debian's libjpeg, libpng, libtiff, libwebp and zlib (HarfBuzz's text shaping, for putText, is
# OpenCV's own bundled subset: Debian's lacks its rasteriser), with no BLAS, no OpenCL and no
# bundled codecs. Debian's FFmpeg is used through OpenCV's videoio plugin
# (libopencv_videoio_ffmpeg.so beside cv2), loaded at the first video file: a daemon that reads a
# camera never maps FFmpeg and the hundred libraries Debian's build of it needs. The PyPI wheel
# that the tests run with holds every module and its own copies of FFmpeg, AV1 codecs and OpenBLAS
# (177 MB unpacked).
#
# The source is the sdist of the same opencv-python-headless release as the wheel in the build
# environment (packaging/opencv-source.txt pins its address and sha256; a different wheel version
# is refused, so the package never ships another OpenCV than the one tested).
#
# usage: scripts/build-opencv.sh --python PY --out DIR
#   --python PY   the build environment's interpreter: its numpy's headers and its wheel's version
#   --out DIR     receives cv2.abi3.so, the FFmpeg plugin and cv2's dist-info folder (with
#                 OpenCV's licence)
# Builds are cached in ${FACEUNLOCK_CACHE:-~/.cache/faceunlock}/opencv, by release, source, numpy
# and this script: about 10 min on 2 cores the first time, none after.
# Needs: cmake, ninja-build, g++, pkg-config, python3-dev, libavcodec-dev, libavformat-dev,
# libswscale-dev, libjpeg-dev, libpng-dev, libtiff-dev, libwebp-dev, zlib1g-dev, dpkg-dev, curl.
set -euo pipefail
cd "$(dirname "$0")/.."
PY= OUT=
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY=$2; shift 2;;
    --out) OUT=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0;;
    *) echo "build-opencv.sh: unknown option $1" >&2; exit 2;;
  esac
done
[ -n "$PY" ] && [ -n "$OUT" ] || { echo "build-opencv.sh: --python and --out are required" >&2; exit 2; }
pinned() { sed -n "s/^$1=//p" packaging/opencv-source.txt; }
VERSION=$(pinned version) URL=$(pinned url) SHA256=$(pinned sha256)
WHEEL=$("$PY" -c 'from importlib.metadata import version; print(version("opencv-python-headless"))')
if [ "$WHEEL" != "$VERSION" ]; then
  echo "build-opencv.sh: the build environment has opencv-python-headless $WHEEL, packaging/opencv-source.txt pins $VERSION: pin the sdist of $WHEEL there" >&2
  exit 2
fi
NUMPY=$("$PY" -c 'import numpy; print(numpy.__version__)')
NUMPY_INCLUDE=$("$PY" -c 'import numpy; print(numpy.get_include())')
RELEASE=$(. /etc/os-release && echo "${VERSION_CODENAME:-unknown}")
KEY=$RELEASE-$VERSION-numpy$NUMPY-$(sha256sum "$0" | cut -c1-12)
CACHE=${FACEUNLOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceunlock}/opencv
DONE=$CACHE/$KEY
TARBALL=$CACHE/$(basename "$URL")
mkdir -p "$CACHE"
# One download or build at a time in this cache (package builds running at once, a container's
# build beside the host's); the others wait, then find it done.
exec 9>"$CACHE/.lock"
flock 9

if [ ! -e "$DONE/cv2.abi3.so" ]; then
  if ! echo "$SHA256  $TARBALL" | sha256sum -c --quiet >/dev/null 2>&1; then
    echo "build-opencv.sh: downloading $URL" >&2
    curl -fsSL ${PIP_CERT:+--cacert "$PIP_CERT"} -o "$TARBALL.part" "$URL"
    echo "$SHA256  $TARBALL.part" | sha256sum -c --quiet \
      || { echo "build-opencv.sh: $URL does not have the pinned sha256" >&2; rm -f "$TARBALL.part"; exit 1; }
    mv "$TARBALL.part" "$TARBALL"
  fi
  WORK=$(mktemp -d /tmp/faceunlock-opencv.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  tar -xzf "$TARBALL" -C "$WORK" --strip-components=1 --wildcards '*/opencv'
  # Debian's hardening flags (PIE code, stack protector, fortify, full RELRO), without debug data.
  export DEB_BUILD_MAINT_OPTIONS=hardening=+all
  FLAGS="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS | sed 's/\(^\| \)-g\( \|$\)/ /')"
  OFF=()
  for feature in GSTREAMER GTK QT OPENCL IPP ITT LAPACK EIGEN OPENJPEG JASPER OPENEXR AVIF \
      JPEGXL PROTOBUF 1394 VA VA_INTEL GPHOTO2 OPENVINO ONNXRUNTIME FLATBUFFERS UNIFONT \
      ITALICFONT OBSENSOR VULKAN OPENGL TBB OPENMP SPNG ZLIB_NG KLEIDICV FASTCV CAROTENE WAYLAND \
      FRAMEBUFFER VTK OPENCLAMDFFT OPENCLAMDBLAS; do
    OFF+=("-DWITH_$feature=OFF")
  done
  echo "build-opencv.sh: building OpenCV $VERSION for $RELEASE (about 10 min on 2 cores)" >&2
  cmake -G Ninja -S "$WORK/opencv" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_INSTALL_PREFIX="$WORK/inst" -DCMAKE_SKIP_RPATH=ON \
    -DCMAKE_C_FLAGS="$FLAGS" -DCMAKE_CXX_FLAGS="$FLAGS" \
    -DCMAKE_SHARED_LINKER_FLAGS="$(dpkg-buildflags --get LDFLAGS)" \
    -DBUILD_LIST=core,imgproc,imgcodecs,videoio,video,features,python3 -DBUILD_SHARED_LIBS=OFF \
    -DBUILD_TESTS=OFF -DBUILD_PERF_TESTS=OFF -DBUILD_EXAMPLES=OFF -DBUILD_DOCS=OFF -DBUILD_opencv_apps=OFF \
    -DBUILD_JAVA=OFF -DBUILD_PNG=OFF -DBUILD_JPEG=OFF -DBUILD_ZLIB=OFF -DBUILD_TIFF=OFF -DBUILD_WEBP=OFF \
    -DPYTHON3_EXECUTABLE=/usr/bin/python3 -DPYTHON3_NUMPY_INCLUDE_DIRS="$NUMPY_INCLUDE" \
    -DPYTHON3_LIMITED_API=ON -DOPENCV_SKIP_PYTHON_LOADER=ON -DOPENCV_PYTHON3_INSTALL_PATH="$WORK/py" \
    -DWITH_FFMPEG=ON -DWITH_V4L=ON -DWITH_PNG=ON -DWITH_JPEG=ON -DWITH_TIFF=ON -DWITH_WEBP=ON \
    -DWITH_HARFBUZZ=ON -DVIDEOIO_PLUGIN_LIST=ffmpeg "${OFF[@]}" -DCPU_DISPATCH="SSE4_1;AVX2" -DENABLE_CONFIG_VERIFICATION=ON \
    > "$WORK/cmake.log" 2>&1 || { tail -40 "$WORK/cmake.log" >&2; exit 1; }
  ninja -C "$WORK/build" > "$WORK/ninja.log" 2>&1 || { grep -A20 FAILED "$WORK/ninja.log" | head -60 >&2; exit 1; }
  ninja -C "$WORK/build" install > /dev/null
  mkdir -p "$WORK/done/licenses"
  mv "$WORK/py/cv2.abi3.so" "$WORK/inst/lib/libopencv_videoio_ffmpeg.so" "$WORK/done/"
  for lib in "$WORK"/done/*.so; do
    strip --strip-unneeded "$lib"
    if readelf -d "$lib" | grep -Eq 'RPATH|RUNPATH'; then
      echo "build-opencv.sh: $(basename "$lib") names a library search path of the build" >&2; exit 1
    fi
  done
  # OpenCV's licence, and those of the third-party code compiled into these modules.
  cp "$WORK/opencv/LICENSE" "$WORK/done/licenses/"
  cp "$WORK"/inst/share/licenses/opencv*/* "$WORK/done/licenses/"
  rm -rf "$DONE" && mv "$WORK/done" "$DONE"
fi

INFO=$OUT/opencv_python_headless-$VERSION+minimal.dist-info
mkdir -p "$INFO/licenses"
install -m644 "$DONE/cv2.abi3.so" "$DONE/libopencv_videoio_ffmpeg.so" "$OUT/"
install -m644 "$DONE"/licenses/* "$INFO/licenses/"
cat > "$INFO/METADATA" <<EOF
Metadata-Version: 2.4
Name: opencv-python-headless
Version: $VERSION+minimal
Summary: OpenCV's core, imgproc, imgcodecs, videoio, video and features modules, built by faceunlock's scripts/build-opencv.sh from the opencv-python-headless $VERSION sdist against Debian's FFmpeg and image libraries
License-Expression: Apache-2.0
Requires-Dist: numpy>=2
EOF
echo "faceunlock scripts/build-opencv.sh" > "$INFO/INSTALLER"
"$PY" - "$OUT" <<'EOF'
import sys
sys.path.insert(0, sys.argv[1])
import cv2

assert cv2.__file__.startswith(sys.argv[1]), cv2.__file__
names = {cv2.videoio_registry.getBackendName(b) for b in cv2.videoio_registry.getBackends()}
missing = {"FFMPEG", "V4L2"} - names
assert not missing, f"OpenCV was built without the video back ends {sorted(missing)}"
for name in ("goodFeaturesToTrack", "calcOpticalFlowPyrLK", "imdecode", "warpAffine", "VideoWriter"):
    assert hasattr(cv2, name), f"OpenCV was built without cv2.{name}"
import os
import tempfile

import numpy as np

loaded = lambda: [line.split()[-1] for line in open("/proc/self/maps") if "libavcodec" in line]
assert not loaded(), "FFmpeg is loaded with cv2; it should wait for the first video file"
with tempfile.TemporaryDirectory() as tmp:
    path = os.path.join(tmp, "check.mp4")
    out = cv2.VideoWriter(path, cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    assert out.isOpened(), "the FFmpeg plugin cannot write a video"
    for i in range(5):
        out.write(np.full((48, 64, 3), 40 * i, np.uint8))
    out.release()
    cap = cv2.VideoCapture(path, cv2.CAP_FFMPEG)
    frames = 0
    while cap.read()[0]:
        frames += 1
    assert frames == 5, f"the FFmpeg plugin read {frames} of 5 frames back"
assert loaded(), "the video was read without FFmpeg"
EOF
echo "$OUT/cv2.abi3.so $(stat -c %s "$OUT/cv2.abi3.so") bytes (OpenCV $VERSION, $RELEASE)"
