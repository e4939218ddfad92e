"""Build-time and bench-only code, kept out of the wheel: `itwin_insights_mcp` never imports it at run time.

- `distribution`: server.json (MCP registry) and the Claude Desktop bundle's manifest, run by `packaging/build.sh`;
- `capability`: the Naftiko capability document (`packaging/build.sh`, and `itwin-insights-mcp capability` from a
  source checkout);
- `budget`: what the tool list costs in context tokens (tiktoken; the budget test and the benchmarks).

It lives beside the runtime package in `src/` so that an editable install (`pip install -e .`) can import it, while
the wheel ships only `src/itwin_insights_mcp` (`[tool.hatch.build.targets.wheel] packages`).
"""
