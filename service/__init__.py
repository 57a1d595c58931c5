"""Family-and-friends photo-removal coordinator."""
