"""Entry point of the Claude Desktop bundle: `itwin-insights-mcp serve` over stdio.

The host runs this with the bundle's uv-managed environment (see the generated pyproject.toml beside the manifest).
Optional settings the user left empty may reach us as empty strings or, in some hosts, as the unsubstituted
`${user_config.x}` placeholder; both are dropped so the server falls back to its defaults (the sandbox when no
credentials are given) instead of failing on a bogus value.
"""

from __future__ import annotations

import os
import sys

from itwin_insights_mcp.cli import main

for _name in [k for k, v in os.environ.items() if k.startswith(("ITWIN_", "INSIGHTS_"))]:
    _value = os.environ[_name].strip()
    if not _value or _value.startswith("${"):
        del os.environ[_name]

if __name__ == "__main__":
    sys.exit(main(["serve", *sys.argv[1:]]))
