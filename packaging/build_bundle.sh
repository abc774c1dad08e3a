#!/usr/bin/env bash
# Build ScaleLab as a self-contained folder, dist/ScaleLab/ (PyInstaller, packaging/scalelab.spec):
# the executable dist/ScaleLab/ScaleLab with Python, Qt, numpy and the lessons inside.
#   packaging/build_bundle.sh              # uses .venv (made if missing), installs the [bundle] extra
# Environment: PYTHON (default .venv/bin/python), DIST (default dist), WORK (default build).
# Then: dist/ScaleLab/ScaleLab --smoke-test /tmp/smoke.png   and   packaging/install_bundle.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
if [ ! -x "$PYTHON" ]; then
  python3 -m venv .venv
  PYTHON=.venv/bin/python
fi
if ! "$PYTHON" -c "import PyInstaller, designer" 2>/dev/null; then
  "$PYTHON" -m pip install -q -e ".[bundle]"
fi

start=$(date +%s)
"$PYTHON" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "${DIST:-dist}" --workpath "${WORK:-build}" packaging/scalelab.spec
echo "built ${DIST:-dist}/ScaleLab/ in $(( $(date +%s) - start )) s ($(du -sh "${DIST:-dist}/ScaleLab" | cut -f1))"
