"""The pure core of bounceback: bytes in, frozen dataclasses out, standard library only.

Nothing in this package does I/O, keeps global mutable state, or imports from the rest of
bounceback (a test holds that line).
"""
