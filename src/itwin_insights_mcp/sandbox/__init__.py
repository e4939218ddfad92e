"""The sandbox: a faithful, persistent emulator of the Insights API with sample iModels.

It shares the catalog with the tools (routes and request validation come from the same documents) and never
imports the server package. Rooms: `app`/`wire` (HTTP), `api/` (one adapter per family), `domain/` (rules over the
store), `engine/` (ECSQL, formulas, extraction, jobs), `imodels/` (sample data); see docs/architecture.md.
"""
