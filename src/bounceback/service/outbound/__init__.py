"""Sending: the message of one delivery, the SMTP relay, and the sandbox used without one."""
