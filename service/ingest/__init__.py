"""Reading photos out of exports, folders and public profiles; no database, no web."""
