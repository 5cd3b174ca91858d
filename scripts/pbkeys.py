"""pbkeys - the Redis key space, for Python: the names come from the table
in apps/common/keys.c (the one place a key name is written), so the tests,
the bench and the harness cannot drift from the daemons.

    k = Keys("pb"); k.waiting == "pb:waiting"; k.queue_stem == "pb:q:"
    k.held("agent-1", d) == "pb:held:agent-1:" + d
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_ENTRY = re.compile(r'\{\s*k->(\w+),\s*"([^"]+)"\s*\}')


def _table():
    with open(os.path.join(ROOT, "apps", "common", "keys.c")) as f:
        found = _ENTRY.findall(f.read())
    if not found:
        raise RuntimeError("apps/common/keys.c: no key table found")
    return found


TABLE = _table()


class Keys:
    """Every key name of keys.h under one prefix, as attributes named as
    in pb_keys (queue, ready, waiting, queue_stem, ...)."""

    def __init__(self, prefix):
        self.prefix = prefix
        for attr, suffix in TABLE:
            setattr(self, attr, prefix + suffix)

    def q(self, dest, client=""):
        """A client's lane of a destination (apps/lua/prelude.lua, Lanes):
        "" for requests without a client key."""
        return self.queue_stem + dest + (":" + client if client else "")

    def lanes(self, dest):
        return self.lanes_stem + dest

    def r(self, rid):
        return self.request_stem + rid

    def d(self, rid):
        return self.data_stem + rid

    def dest(self, dest):
        return self.dest_stem + dest

    def held(self, agent, dest=None):
        """An agent's held index, or its held set of one destination."""
        k = self.held_stem + agent
        return k if dest is None else k + ":" + dest

    def processing(self, agent):
        return self.processing_stem + agent

    def heartbeat(self, agent):
        return self.heartbeat_stem + agent


def queue_size(m, k):
    """What max_queue_size bounds (apps/lua/prelude.lua, queue_size): the
    waiting count plus the version 1 queue's length."""
    return int(m.get(k.waiting) or 0) + m.llen(k.queue)
