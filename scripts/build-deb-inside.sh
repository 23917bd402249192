#!/usr/bin/env bash
# Inside a booted container of the target release (build-deb.sh --release starts it, with the
# checkout's files in /stage/src and its settings in /stage/env): install that release's build tools
# and Python, make a run-time environment pinned like the checkout's .venv (/stage/constraints.txt),
# and build the package into /stage/out with build-deb.sh, now on its own release.
set -euo pipefail
# shellcheck disable=SC1091
. /stage/env
export FACEUNLOCK_CACHE FACEUNLOCK_DEB_VERSION FACEUNLOCK_COMMIT FACEUNLOCK_COMMIT_TIME FACEUNLOCK_MAINTAINER DEBIAN_FRONTEND=noninteractive
cd /stage/src
apt-get -qq update
apt-get -y -qq install --no-install-recommends python3-venv python3-pip python3-gi gir1.2-glib-2.0 \
  dpkg-dev gcc make libc6-dev libpam0g-dev libsystemd-dev ca-certificates zstd \
  curl cmake ninja-build g++ pkg-config python3-dev libavcodec-dev libavformat-dev libswscale-dev \
  libjpeg-dev libpng-dev zlib1g-dev libtiff-dev libwebp-dev >/dev/null
[ -s /stage/ca.crt ] && export PIP_CERT=/stage/ca.crt
python3 -m venv /stage/venv
PIP=(/stage/venv/bin/pip install -q --disable-pip-version-check -c /stage/constraints.txt)
mapfile -t DEPS < <(python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
mapfile -t NO_DEPS < <(python3 -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["faceunlock"]["no-deps-runtime"]))')
"${PIP[@]}" "${DEPS[@]}"
"${PIP[@]}" --no-deps "${NO_DEPS[@]}"
ARGS=(--release "$RELEASE" --out /stage/out --compress "$COMPRESS")
[ -n "$LEVEL" ] && ARGS+=(--level "$LEVEL")
if [ "$LINTIAN" = 1 ]; then
  apt-get -y -qq install --no-install-recommends lintian >/dev/null
  ARGS+=(--lintian)
fi
FACEUNLOCK_BUILD_PYTHON=/stage/venv/bin/python bash scripts/build-deb.sh "${ARGS[@]}"
