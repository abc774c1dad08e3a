#!/usr/bin/env bash
# Install the bundle built by packaging/build_bundle.sh for the current user (no root):
#   ~/.local/opt/scalelab/          the folder (replaced whole on a reinstall)
#   ~/.local/bin/scalelab           a link to its executable (unless another scalelab is there)
#   ~/.local/share/applications/scalelab.desktop, the icon in hicolor and the .scalelab file
#   type, by the bundle's own `ScaleLab --install-desktop` (Exec= names the bundle's executable)
#   packaging/install_bundle.sh [BUNDLE]      # BUNDLE defaults to dist/ScaleLab
#   packaging/install_bundle.sh --uninstall
# Environment: PREFIX (default ~/.local/opt/scalelab), BIN_DIR (default ~/.local/bin),
# XDG_DATA_HOME (default ~/.local/share).
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX=${PREFIX:-$HOME/.local/opt/scalelab}
BIN_DIR=${BIN_DIR:-$HOME/.local/bin}
DATA=${XDG_DATA_HOME:-$HOME/.local/share}
case "$DATA" in /*) ;; *) DATA=$HOME/.local/share ;; esac

if [ "${1:-}" = "--uninstall" ]; then
  rm -rf -- "$PREFIX"
  [ -L "$BIN_DIR/scalelab" ] && [ "$(readlink "$BIN_DIR/scalelab")" = "$PREFIX/ScaleLab" ] && rm -f -- "$BIN_DIR/scalelab"
  rm -f -- "$DATA/applications/scalelab.desktop" "$DATA/icons/hicolor/scalable/apps/scalelab.svg" \
           "$DATA/mime/packages/scalelab.xml"
  command -v update-mime-database >/dev/null && update-mime-database "$DATA/mime" || true
  command -v update-desktop-database >/dev/null && update-desktop-database "$DATA/applications" || true
  echo "uninstalled ScaleLab from $PREFIX"
  exit 0
fi

BUNDLE=${1:-dist/ScaleLab}
if [ ! -x "$BUNDLE/ScaleLab" ]; then
  echo "install_bundle.sh: no bundle at $BUNDLE (run packaging/build_bundle.sh first)" >&2
  exit 1
fi

# Copy beside the target, then swap: a failed copy leaves the old install as it was.
mkdir -p -- "$(dirname "$PREFIX")"
tmp=$(mktemp -d "$PREFIX.new.XXXXXX")
cp -a -- "$BUNDLE"/. "$tmp"/
chmod 755 "$tmp"
rm -rf -- "$PREFIX"
mv -- "$tmp" "$PREFIX"

mkdir -p -- "$BIN_DIR"
if [ ! -e "$BIN_DIR/scalelab" ] || [ -L "$BIN_DIR/scalelab" ]; then
  ln -sfn -- "$PREFIX/ScaleLab" "$BIN_DIR/scalelab"
else
  echo "install_bundle.sh: $BIN_DIR/scalelab exists and is not a link: left alone" >&2
fi

XDG_DATA_HOME=$DATA "$PREFIX/ScaleLab" --install-desktop
echo "installed ScaleLab in $PREFIX; open it from the applications menu, with scalelab, or by double-clicking a .scalelab file"
