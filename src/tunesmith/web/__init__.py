"""The local web app (`tunesmith ui`): FastAPI + Jinja2, server-rendered."""
