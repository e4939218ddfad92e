"""The sandbox: a faithful, persistent emulator of the Insights API with sample iModels.

It shares the catalog with the tools (routes and request validation come from the same documents) and never
imports the server package.
"""
