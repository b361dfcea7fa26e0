"""The library commands a job calls: one module per command, each with ``main()``.

Every command explains itself with ``--help``, reports misuse with exit status 2 and a
message that says what to do, and other failures with status 1 (``retry`` and
``wait-for`` document their own statuses).
"""
