"""Entry points for bounces from the outside: the SMTP receiver for the bounce domains."""
