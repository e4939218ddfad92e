"""The MCP face: tools derived from the catalog, the low-level server and its transports."""
