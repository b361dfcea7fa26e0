"""The kopf edge of Overseer: settings, handler registration and the reactions they call.

Run it with ``python -m overseer.operator`` (``--help`` explains the options).
"""
