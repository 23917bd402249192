#!/usr/bin/env bash
# Build the Debian package faceunlock_<version>+git<commit time>_<arch>.deb with dpkg-deb (no
# debhelper needed).
#
# Contents:
# - /usr/lib/faceunlock: a private virtual environment of Debian's python3 with faceunlock and only
#   its run-time dependencies: [project] dependencies of pyproject.toml, plus
#   [tool.faceunlock] no-deps-runtime (packages read only for their data files), pinned to the
#   versions installed in .venv, the environment the tests ran in, but for OpenCV, which is built
#   from the same release's source with only the modules used, against this release's FFmpeg and
#   image libraries (scripts/build-opencv.sh). Debian's python3-gi is linked in alone (not all of
#   Debian's site-packages). No bytecode: postinst compiles it, prerm deletes it.
# - /usr/bin/faceunlock and /usr/bin/faceunlock-pam, which run that interpreter with -I;
# - /lib/<multiarch>/security/pam_faceunlock.so (/usr/lib on trixie), the native PAM module;
# - the files `faceunlock install` installs, from the same list: the unit, bus policy, D-Bus
#   activation file, pam-auth-update profile, sysusers.d, polkit rules and actions, the settings
#   app's launcher (/usr/bin/faceunlock-settings; GTK 4 and libadwaita are Recommends, so a server
#   stays small), man pages and shell completion;
# - maintainer scripts from packaging/debian: postinst enables and starts the daemon, prerm takes
#   face unlock out of the PAM stacks and stops it, postrm --purge deletes the enrolled faces.
#
# usage: scripts/build-deb.sh [--release bookworm|trixie] [--out DIR] [--compress xz|zstd|gzip|none]
#                              [--level N] [--lintian]
#   --release R    the Debian release to build for (default: this machine's). Another release is
#                  built inside a booted container of it (../shared/tools/systemd-sandbox/run.sh, or
#                  $FACEUNLOCK_SANDBOX; its network reaches the Debian and PyPI registries), from the
#                  checkout's tracked and unignored files, so that the interpreter, PyGObject and
#                  native libraries are that release's (scripts/build-deb-inside.sh)
#   --out DIR      where the .deb goes (default: out/)
#   --compress     dpkg-deb's compressor (default xz: 50 MB in about 80 s on 2 cores, 2026-12-07;
#                  zstd: faster and larger, and Debian 12's lintian refuses it; gzip --level 1 is faster
#                  still and larger)
#   --lintian      run lintian on the result (packaging/debian/lintian-overrides explains each
#                  tag it overrides)
# Needs: the project's .venv (scripts/setup.sh; its pip does the installing), dpkg-dev.
# Prints the path of the package and its size.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=out COMPRESS=xz LEVEL= LINTIAN=0 RELEASE=
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2;;
    --compress) COMPRESS=$2; shift 2;;
    --level) LEVEL=$2; shift 2;;
    --lintian) LINTIAN=1; shift;;
    --release) RELEASE=$2; shift 2;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d'; exit 0;;
    *) echo "build-deb.sh: unknown option $1" >&2; exit 2;;
  esac
done
HERE=$(. /etc/os-release && echo "$VERSION_CODENAME")
COMMIT=${FACEUNLOCK_COMMIT:-$(git rev-parse --short HEAD)}
COMMIT_TIME=${FACEUNLOCK_COMMIT_TIME:-$(git log -1 --format=%ct)}
MAINTAINER=${DEBFULLNAME:+$DEBFULLNAME <${DEBEMAIL:-}>}
MAINTAINER=${MAINTAINER:-${FACEUNLOCK_MAINTAINER:-$(git log -1 --format='%an <%ae>')}}
if [ -n "$RELEASE" ] && [ "$RELEASE" != "$HERE" ]; then
  case "$RELEASE" in bookworm|trixie) ;; *) echo "build-deb.sh: unsupported release $RELEASE" >&2; exit 2;; esac
  RUN_SH=${FACEUNLOCK_SANDBOX:-$ROOT/../shared/tools/systemd-sandbox/run.sh}
  [ -x "$RUN_SH" ] || { echo "build-deb.sh: building for $RELEASE here needs a $RELEASE container: no $RUN_SH (set FACEUNLOCK_SANDBOX), or run this on $RELEASE" >&2; exit 2; }
  STAGE=$(mktemp -d /tmp/faceunlock-$RELEASE.XXXXXX)
  trap 'rm -rf "$STAGE"' EXIT
  mkdir "$STAGE/src" "$STAGE/out"
  git ls-files -z --cached --others --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$STAGE/src"
  [ -x .venv/bin/python ] && .venv/bin/python -m pip freeze --exclude-editable > "$STAGE/constraints.txt"
  touch "$STAGE/constraints.txt"
  # This machine's certificate authorities, for pip in the container (a registry proxy may need them).
  cp "${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}" "$STAGE/ca.crt" 2>/dev/null || true
  # The host's build cache (OpenCV's source and builds, by release) serves the container too.
  CACHE=${FACEUNLOCK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/faceunlock}
  mkdir -p "$CACHE"
  printf 'FACEUNLOCK_CACHE=/cache\nFACEUNLOCK_DEB_VERSION=%q\nRELEASE=%q\nCOMPRESS=%q\nLEVEL=%q\nLINTIAN=%q\nFACEUNLOCK_COMMIT=%q\nFACEUNLOCK_COMMIT_TIME=%q\nFACEUNLOCK_MAINTAINER=%q\n' \
    "${FACEUNLOCK_DEB_VERSION:-}" "$RELEASE" "$COMPRESS" "$LEVEL" "$LINTIAN" "$COMMIT" "$COMMIT_TIME" "$MAINTAINER" > "$STAGE/env"
  echo "build-deb.sh: building for $RELEASE in a booted $RELEASE container" >&2
  "$RUN_SH" --rootfs "debian:$RELEASE" --host-network --timeout 2400 --bind "$STAGE:/stage" --bind "$CACHE:/cache" -- \
    bash /stage/src/scripts/build-deb-inside.sh >&2
  mkdir -p "$OUT"
  for deb in "$STAGE"/out/*.deb; do
    [ -e "$deb" ] || { echo "build-deb.sh: the $RELEASE container built no package" >&2; exit 1; }
    cp "$deb" "$OUT/"
    echo "$OUT/$(basename "$deb") $(stat -c %s "$deb") bytes, for $RELEASE"
  done
  exit 0
fi
PY=${FACEUNLOCK_BUILD_PYTHON:-$ROOT/.venv/bin/python}
[ -x "$PY" ] || { echo "build-deb.sh: no .venv here; run scripts/setup.sh first" >&2; exit 2; }
for tool in dpkg-deb dpkg-shlibdeps; do
  command -v $tool >/dev/null || { echo "build-deb.sh: $tool is missing (apt install dpkg-dev)" >&2; exit 2; }
done

PREFIX=/usr/lib/faceunlock
PYVER=$(/usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
NEXT=$(/usr/bin/python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1] + 1}")')
VERSION=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
# Each commit's package is newer than the one before it, so that apt upgrades from one build to the
# next (the project's version, then the commit's time: 0.1.0+git20261207.071500).
# FACEUNLOCK_DEB_VERSION sets another (the upgrade test's stand-in for an earlier build).
VERSION=${FACEUNLOCK_DEB_VERSION:-$VERSION+git$(date -u -d "@$COMMIT_TIME" +%Y%m%d.%H%M%S)}
ARCH=$(dpkg --print-architecture)
WORK=$(mktemp -d /tmp/faceunlock-deb.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
PKG=$WORK/pkg
VENV=$PKG$PREFIX
SITE=$VENV/lib/python$PYVER/site-packages
T0=$SECONDS
step() { echo "build-deb.sh: [$((SECONDS - T0)) s] $*" >&2; }

# ------------------------------------------------------------------ the private environment
step "environment in $PREFIX (Python $PYVER)"
/usr/bin/python3 -m venv --without-pip "$VENV"
"$PY" - "$WORK" <<'EOF'
import sys, tomllib
from pathlib import Path
work = Path(sys.argv[1])
project = tomllib.load(open("pyproject.toml", "rb"))
# OpenCV is built from source below (scripts/build-opencv.sh), not installed from its wheel.
deps = [r for r in project["project"]["dependencies"] if not r.startswith("opencv-python-headless")]
(work / "requirements.txt").write_text("\n".join(deps) + "\n")
extra = project.get("tool", {}).get("faceunlock", {}).get("no-deps-runtime", [])
(work / "no-deps.txt").write_text("".join(f"{r}\n" for r in extra))
EOF
"$PY" -m pip freeze --exclude-editable > "$WORK/constraints.txt"
PIP=("$PY" -m pip --python "$VENV/bin/python" install -q --disable-pip-version-check --no-compile
     --no-warn-script-location -c "$WORK/constraints.txt" ${TORCH_INDEX_URL:+--extra-index-url "$TORCH_INDEX_URL"})
"${PIP[@]}" -r "$WORK/requirements.txt"
[ -s "$WORK/no-deps.txt" ] && "${PIP[@]}" --no-deps -r "$WORK/no-deps.txt"
"${PIP[@]}" --no-deps "$ROOT"
# OpenCV: only the modules faceunlock calls, against Debian's FFmpeg and image libraries (the wheel
# brings every module, its own FFmpeg and AV1 codecs, and a second OpenBLAS: 177 MB unpacked).
step "OpenCV from source (scripts/build-opencv.sh; cached after the first build)"
bash scripts/build-opencv.sh --python "$PY" --out "$WORK/opencv" >&2
cp -a "$WORK/opencv/." "$SITE/"

# Debian's PyGObject (python3-gi), and nothing else of Debian's site-packages.
mkdir "$VENV/debian-gi"
ln -s /usr/lib/python3/dist-packages/gi "$VENV/debian-gi/gi"
echo "$PREFIX/debian-gi" > "$SITE/faceunlock-debian-gi.pth"

# Not needed at run time, so not shipped: activation scripts; the .gitignore that Python 3.13's venv
# writes; static libraries (for building extensions). Libraries are not stripped: auditwheel's
# patchelf edits do not survive strip (numpy's OpenBLAS then fails to load: "ELF load command
# address/offset not page-aligned"). Shared libraries and other files that are not programs lose
# their x bits.
rm -f "$VENV"/bin/activate* "$VENV"/bin/Activate.ps1 "$VENV/.gitignore"
rmdir "$VENV/include/python$PYVER" "$VENV/include" 2>/dev/null || true
# The PAM module's package-data copy: the package installs the module where libpam looks (below).
find "$SITE" -path '*/faceunlock/data/pam/pam_faceunlock.so' -delete
# Weights the run time never opens (traced over enrol and verify: the int8 embedder, the MTCNN and
# MiniFASNet ONNX files and their cards are all it reads): the torch checkpoints (.pt, .pth), which
# only training and `faceunlock export` read, and the float embedder, which only `eval --backend`
# compares with. Their model cards stay, so `faceunlock` can name what is missing.
rm -f "$SITE"/faceunlock/data/models/*.pt "$SITE"/faceunlock/data/models/*.pth \
  "$SITE"/faceunlock/data/models/dlib-resnet-ft1.onnx
# Parts of the wheels that nothing here imports: numpy's test suites, and ONNX Runtime's tools for
# making and converting models (transformers, quantization, tools), not for running them.
find "$SITE/numpy" -depth -type d -name tests -exec rm -rf {} +
rm -rf "$SITE"/onnxruntime/{transformers,quantization,tools}
find "$SITE" -name '*.a' -type f -delete
find "$SITE" -depth -type d -empty -delete
"$PY" - "$VENV" > "$WORK/elf.txt" <<'EOF'
import os, sys
for folder, _, names in os.walk(sys.argv[1]):
    for name in names:
        path = os.path.join(folder, name)
        if not os.path.islink(path):
            with open(path, "rb") as fh:
                head = fh.read(4)
            if head == b"\x7fELF":
                print(path)
            if (head[:2] != b"#!" and head != b"\x7fELF" or ".so" in name) and os.stat(path).st_mode & 0o111:
                os.chmod(path, 0o644)
EOF
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +

# Relocate: the environment was made in $WORK; it will live in $PREFIX. Entry points run with -I.
for f in "$VENV"/bin/*; do
  [ -f "$f" ] && [ ! -L "$f" ] || continue
  if head -c 2 "$f" | grep -q '#!'; then
    sed -i "1s|^#!$VENV/bin/python[0-9.]*\$|#!$PREFIX/bin/python -I|" "$f"
  fi
done
sed -i "s|^command = .*|command = /usr/bin/python3 -m venv --without-pip $PREFIX|" "$VENV/pyvenv.cfg"
find "$SITE" -name direct_url.json -path '*faceunlock-*' -delete
if grep -rlI --exclude='*.py' -e "$WORK" "$PKG" >/dev/null || grep -rl -e "$WORK" "$VENV/bin" "$VENV/pyvenv.cfg" >/dev/null; then
  grep -rl -e "$WORK" "$PKG" | head >&2
  echo "build-deb.sh: the build directory is still named in the files above" >&2; exit 1
fi

step "checking the environment loads the model and runs the detector"
"$VENV/bin/python" -I -c '
import numpy as np
from faceunlock.config import Config
from faceunlock.model import load_card
from faceunlock.pipeline import Pipeline
p = Pipeline(Config(), load_card(), threads=1)
p.analyse(np.zeros((480, 640, 3), np.uint8))
print("model", load_card().name, "loads")' >&2
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +

# ------------------------------------------------------------------ the PAM module
step "pam_faceunlock.so (make -C pam: hardening flags, warnings as errors)"
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
make -s -C pam pam_faceunlock.so
LIBDIR=lib
[ "$HERE" = bookworm ] || LIBDIR=usr/lib  # merged /usr from Debian 13 on
install -D -m644 pam/pam_faceunlock.so "$PKG/$LIBDIR/$MULTIARCH/security/pam_faceunlock.so"
echo "$PKG/$LIBDIR/$MULTIARCH/security/pam_faceunlock.so" >> "$WORK/elf.txt"

# ------------------------------------------------------------------ service files, commands, docs
step "service files, commands and documents"
# The files `faceunlock install` installs too, from one list (faceunlock.service.install.FILES, with
# the unit in /lib): unit, bus policy and activation, PAM profile, sysusers, polkit rules and actions,
# the settings app's launcher, man pages (gzipped here) and shell completion.
# Debian 12 ships /lib's files in /lib; Debian 13 (merged /usr) in /usr/lib.
USR_LIB=
[ "$LIBDIR" = lib ] || USR_LIB=--usr-lib
"$VENV/bin/python" -I -B -m faceunlock.service.install $USR_LIB > "$WORK/files.txt"
while IFS=$'\t' read -r source place; do
  install -D -m644 "$source" "$PKG/$place"
  case "$place" in usr/share/man/*) gzip -9n "$PKG/$place";; esac
done < "$WORK/files.txt"
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
mkdir -p "$PKG/usr/bin"
ln -s ../lib/faceunlock/bin/faceunlock "$PKG/usr/bin/faceunlock"
ln -s ../lib/faceunlock/bin/faceunlock-pam "$PKG/usr/bin/faceunlock-pam"
ln -s ../lib/faceunlock/bin/faceunlock-settings "$PKG/usr/bin/faceunlock-settings"
DOC=$PKG/usr/share/doc/faceunlock
install -D -m644 README.md "$DOC/README.md"
install -m644 docs/config.example.toml "$DOC/config.example.toml"
install -D -m644 packaging/debian/lintian-overrides "$PKG/usr/share/lintian/overrides/faceunlock"
# Debian 13's lintian no longer has this tag, and an override of a tag it does not know is an error.
[ "$HERE" = bookworm ] || sed -i '/package-supports-alternative-init-but-no-init.d-script/d' \
  "$PKG/usr/share/lintian/overrides/faceunlock"
printf 'faceunlock (%s) unstable; urgency=medium\n\n  * Built from commit %s.\n\n -- %s  %s\n' \
  "$VERSION" "$COMMIT" "$MAINTAINER" "$(date -R -d "@$COMMIT_TIME")" \
  | gzip -9n > "$DOC/changelog.gz"
"$VENV/bin/python" -I -B - "$SITE" "$DOC/copyright" "$(date -u -d "@$COMMIT_TIME" +%Y)" <<'EOF'
import sys
from importlib.metadata import distributions
from pathlib import Path
site, out = sys.argv[1], Path(sys.argv[2])
text = Path("packaging/debian/copyright").read_text().replace("YEAR", sys.argv[3])
for d in sorted(distributions(path=[site]), key=lambda d: d.metadata["Name"].lower()):
    licence = d.metadata.get("License-Expression") or d.metadata.get("License") or ""
    licence = licence.strip().splitlines()[0][:70] if licence.strip() else "see its dist-info folder"
    text += f"  {d.metadata['Name']} {d.version}: {licence}\n"
out.write_text(text)
EOF

# ------------------------------------------------------------------ control files
step "control files"
# Relative links to Debian's interpreter and PyGObject (absolute ones were needed to run the checks).
ln -sfn ../../../bin/python3 "$VENV/bin/python3"
ln -sfn ../../python3/dist-packages/gi "$VENV/debian-gi/gi"
mkdir -p "$PKG/DEBIAN"
install -m755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$PKG/DEBIAN/"
mkdir -p "$WORK/shlibs/debian"
printf 'Source: faceunlock\n\nPackage: faceunlock\nArchitecture: any\n' > "$WORK/shlibs/debian/control"
mapfile -t ELF < "$WORK/elf.txt"
mapfile -t LIBDIRS < <(printf '%s\n' "${ELF[@]}" | xargs -n1 dirname | sort -u | sed 's/^/-l/')
SHLIBS=$(cd "$WORK/shlibs" && dpkg-shlibdeps -O --ignore-missing-info "${LIBDIRS[@]}" "${ELF[@]}" 2>/dev/null \
  | sed -n 's/^shlibs:Depends=//p')
DEPENDS="python3 (>= $PYVER), python3 (<< $NEXT), python3-gi, gir1.2-glib-2.0, dbus, libpam-modules, libpam-runtime, systemd, $SHLIBS"
DEPENDS="$DEPENDS, polkitd"
RECOMMENDS="gir1.2-gtk-4.0, gir1.2-adw-1"
cat > "$PKG/DEBIAN/control" <<EOF
Package: faceunlock
Version: $VERSION
Architecture: $ARCH
Maintainer: $MAINTAINER
Installed-Size: $(du -sk --exclude=DEBIAN "$PKG" | cut -f1)
Depends: $DEPENDS
Recommends: $RECOMMENDS
Section: admin
Priority: optional
Description: face unlock for Linux desktops (PAM and logind)
 A warm daemon checks whether the person in front of the camera is an enrolled
 user. It answers PAM through its module pam_faceunlock.so (enable with
 pam-auth-update) and unlocks locked logind sessions. Every failure falls
 through to the password.
 .
 The package carries its own Python environment in /usr/lib/faceunlock.
EOF
(cd "$PKG" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum) > "$PKG/DEBIAN/md5sums"
chmod 644 "$PKG/DEBIAN/md5sums" "$PKG/DEBIAN/control"
find "$PKG" -type d -exec chmod 755 {} +

# ------------------------------------------------------------------ build
mkdir -p "$OUT"
DEB=$OUT/faceunlock_${VERSION}_${ARCH}.deb
step "dpkg-deb -Z$COMPRESS"
dpkg-deb --root-owner-group -Z"$COMPRESS" ${LEVEL:+-z"$LEVEL"} --build "$PKG" "$DEB" >&2
echo "$DEB $(stat -c %s "$DEB") bytes, installed size $(du -sk --exclude=DEBIAN "$PKG" | cut -f1) KiB"
if [ $LINTIAN = 1 ]; then
  step "lintian"
  lintian --fail-on error,warning "$DEB" || { echo "build-deb.sh: lintian found problems" >&2; exit 1; }
fi
