"""The face engine: safe image decoding, detection, encoding and matching; knows nothing of the web or the database."""
