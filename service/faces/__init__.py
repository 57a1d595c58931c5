"""The face engine: safe decoding, detection, encoding, matching; no database, no web."""
