"""FastAPI routers: the JSON API and the pages. Thin: parse, call a stage, render."""
