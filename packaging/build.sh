#!/usr/bin/env bash
# Build everything that ships, into OUTDIR (default dist/):
#   the wheel and sdist (`python -m build`, the sdist's wheel built from the sdist), checked by `twine check`;
#   server.json for the MCP registry (generated; must equal the committed /server.json);
#   the Naftiko capability document of the default profile (generated; must equal /itwin-insights.capability.yml);
#   the MCP App report view (built from packaging/ui/ with pinned npm packages; must equal the committed copy);
#   the Claude Desktop bundle itwin-insights-mcp-<version>.mcpb (manifest generated, validated and packed by the
#   official @anthropic-ai/mcpb tool, pinned below).
# Needs: the package importable by $PYTHON (the dev install), `build` and `twine` in it, and node/npx.
set -euo pipefail
cd "$(dirname "$0")/.."

MCPB="@anthropic-ai/mcpb@2.1.2"
PYTHON="${PYTHON:-python}"
OUTDIR="${1:-dist}"

mkdir -p "$OUTDIR"
OUTDIR="$(cd "$OUTDIR" && pwd)"
rm -rf "$OUTDIR"/itwin_insights_mcp-* "$OUTDIR"/itwin-insights-mcp-*.mcpb "$OUTDIR/server.json" "$OUTDIR/mcpb" \
    "$OUTDIR/itwin-insights.capability.yml" "$OUTDIR/report-view.html"

echo "== MCP App report view" >&2
view="src/itwin_insights_mcp/server/ui/report-view.html"
bash packaging/ui/build.sh "$OUTDIR/report-view.html"
if ! cmp -s "$view" "$OUTDIR/report-view.html"; then
    echo "$view is stale: run \`bash packaging/ui/build.sh\` and commit it." >&2
    exit 1
fi

echo "== wheel and sdist" >&2
"$PYTHON" -m build --outdir "$OUTDIR" . >&2
"$PYTHON" -m twine check --strict "$OUTDIR"/itwin_insights_mcp-*.whl "$OUTDIR"/itwin_insights_mcp-*.tar.gz >&2
"$PYTHON" -m zipfile -l "$OUTDIR"/itwin_insights_mcp-*.whl | grep "itwin_insights_mcp/server/ui/report-view.html" >/dev/null \
    || { echo "the wheel lacks the report view ($view)" >&2; exit 1; }

echo "== server.json" >&2
"$PYTHON" -m itwin_insights_mcp_build.distribution server-json "$OUTDIR"
if ! cmp -s server.json "$OUTDIR/server.json"; then
    echo "server.json is stale: run \`python -m itwin_insights_mcp_build.distribution server-json .\` and commit it." >&2
    exit 1
fi

echo "== Naftiko capability document" >&2
"$PYTHON" -m itwin_insights_mcp_build.capability --output "$OUTDIR/itwin-insights.capability.yml"
if ! cmp -s itwin-insights.capability.yml "$OUTDIR/itwin-insights.capability.yml"; then
    echo "itwin-insights.capability.yml is stale: run \`itwin-insights-mcp capability --output itwin-insights.capability.yml\` and commit it." >&2
    exit 1
fi

echo "== Claude Desktop bundle" >&2
version="$("$PYTHON" -c 'import itwin_insights_mcp; print(itwin_insights_mcp.__version__)')"
wheel="$OUTDIR/itwin_insights_mcp-$version-py3-none-any.whl"
test -f "$wheel" || { echo "expected $wheel from the build" >&2; exit 1; }
stage="$OUTDIR/mcpb"
mkdir -p "$stage/wheels"
cp -R packaging/mcpb/. "$stage/"
cp "$wheel" "$stage/wheels/"
"$PYTHON" -m itwin_insights_mcp_build.distribution mcpb-manifest "$stage"
npx --yes "$MCPB" validate "$stage/manifest.json" >&2
npx --yes "$MCPB" pack "$stage" "$OUTDIR/itwin-insights-mcp-$version.mcpb" >&2

echo "built:" >&2
ls -l "$OUTDIR"/itwin_insights_mcp-* "$OUTDIR"/itwin-insights-mcp-*.mcpb "$OUTDIR/server.json" \
    "$OUTDIR/itwin-insights.capability.yml" >&2
