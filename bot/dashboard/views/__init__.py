"""The dashboard's pages: each module here is found and added by `create_dashboard`.

See `bot/dashboard/__init__.py` for how to write one.
"""
