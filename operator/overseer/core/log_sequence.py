"""Which frames of a pod's log a follower has read, and how many it never saw.

The supervisor numbers its frames (``seq``) from 1, one more with every frame; the
follower (:mod:`overseer.operator.output`) counts a jump as frames lost to log rotation.
"""

from __future__ import annotations


class Seen:
    """The highest ``seq`` read from a pod's log, and how many frames were skipped over.

    ``seq`` grows by one with every frame, so a jump means frames never read: the log
    rotated more than once between two reads, and the API serves the newest file only.
    """

    def __init__(self, highest: int) -> None:
        self.highest = highest
        self.lost = 0

    def take(self, seq: int) -> None:
        # Also from 0: a fresh follower whose log starts past seq 1 (rotated before it
        # was first read) missed the frames before it.
        if seq > self.highest + 1:
            self.lost += seq - self.highest - 1
        self.highest = max(self.highest, seq)
