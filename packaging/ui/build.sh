#!/usr/bin/env bash
# Build the MCP App report view from the pinned npm packages (package-lock.json) into one self-contained HTML file:
#   bash packaging/ui/build.sh            -> src/itwin_insights_mcp/server/ui/report-view.html (shipped in the wheel)
#   bash packaging/ui/build.sh OUTFILE    -> OUTFILE (packaging/build.sh compares it with the committed file)
set -euo pipefail
out="${1:+$(cd "$(dirname "$1")" && pwd)/$(basename "$1")}"
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --loglevel=error >&2
node build.mjs ${out:+"$out"}
