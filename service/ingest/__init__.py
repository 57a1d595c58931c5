"""Reading photos out of exports, folders and public profiles; knows nothing of the web or the database."""
