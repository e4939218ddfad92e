"""Preview of a proposed fix, not a peer: our server with its upstream client on `httpx2` instead of `httpx`.

`httpx2` (the SDK's own HTTP client, already installed with `mcp`) keeps httpx's API; aliasing the module before our
package imports it shows what the switch would buy without touching src/. Same arguments as `itwin-insights-mcp`.
"""

from __future__ import annotations

import sys

import httpx2

sys.modules["httpx"] = httpx2

from itwin_insights_mcp.cli import entrypoint  # noqa: E402

if __name__ == "__main__":
    entrypoint()
