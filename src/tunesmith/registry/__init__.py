"""The registry: which model a reference names and where its answers come from (resolver.py),
and exporting a registered model's weights (export.py). Rows live in the store."""
