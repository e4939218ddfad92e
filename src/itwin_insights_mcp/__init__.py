"""MCP server for Bentley iTwin Insights (Reporting), with an offline sandbox of the same API."""

__version__ = "0.1.0"

__all__ = ["__version__"]
