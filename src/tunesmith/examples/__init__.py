"""Example data bundled with tunesmith: a generator of realistic customer-support tickets
(`tunesmith.examples.tickets`) with the guide's data pitfalls planted and recorded."""
