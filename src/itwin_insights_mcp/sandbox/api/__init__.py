"""The sandbox's API adapters: one thin module per API family, wire shape <-> domain call.

`reporting_v1`, `grouping_mapping`, `reporting_v2`, `context` and `odata` each export `HANDLERS` (operation id ->
handler) and never import each other; `reports` and `links` hold what two of them share.
"""
