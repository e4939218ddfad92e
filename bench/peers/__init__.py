"""Peer servers the benchmarks compare against: the SDK floor and FastMCP's OpenAPI-generated server."""
