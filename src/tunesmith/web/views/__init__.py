"""The app's own sections, one module each: overview, datasets, jobs, models, evaluations."""
