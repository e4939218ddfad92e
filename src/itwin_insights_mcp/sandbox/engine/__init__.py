"""The sandbox's engine: ECSQL translation, the formula language, extraction and background jobs.

It computes; it knows nothing of HTTP. It reads the store and the sample iModels' tables.
"""
