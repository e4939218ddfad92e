"""The API side: the operation catalog, the token providers and the shared HTTP client."""
