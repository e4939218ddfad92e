"""`python -m itwin_insights_mcp` runs the CLI."""

from .cli import entrypoint

entrypoint()
