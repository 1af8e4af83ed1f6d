"""The registry: which model a reference names and where its answers come from (resolver.py),
finding, listing and staging model versions (models.py), and exporting a registered model's
weights (export.py). Rows live in the store."""
