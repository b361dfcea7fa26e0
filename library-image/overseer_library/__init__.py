"""Overseer's in-pod library: the supervisor, its output protocol and the job commands.

Everything in this package uses only the Python standard library: the library image
carries a plain Debian ``python3`` and nothing else.  The operator imports
:mod:`overseer_library.protocol` too, to decode what the supervisor writes.
"""
