"""Hosting: who may call the HTTP server (auth modes), and whose Bentley token each call uses."""
