"""The sandbox's API adapters: one thin module per API family, wire shape <-> domain call.

`reporting_v1`, `grouping_mapping`, `reporting_v2`, `context` and `odata` each export `HANDLERS` (operation id ->
handler) and never import each other; `reports` holds what v1 and v2 share, `families` the names of the catalog
families that links point into.
"""
