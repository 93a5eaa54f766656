"""Parsers for the standards: RFC 3464 DSNs, RFC 5965 ARF, RFC 3834 auto-replies, and the SMTP
reply and enhanced status codes found in free text."""
