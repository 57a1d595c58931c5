"""E-mail: rendering templates into a mail record, and sending it over SMTP or into the outbox."""
