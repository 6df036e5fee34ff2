"""Taking a message from Redis and noting who holds it, in one step.

kombu's Redis consumer pops a message with ``BRPOP`` and notes it as
unacknowledged in a second command: a consumer killed between the two took
the message with it, for good. Here one Lua script pops the message from
the first non-empty of the consumer's queue keys and, in the same atomic
step, writes what kombu's restores read (the ``unacked`` hash and its
``unacked_index``) and pyfi's holder note (``pyfi.holders``): at every
instant a message is either in its queue or noted as held by a consumer,
which the agent's give-back (or the visibility timeout) returns.

Lua cannot block, so an idle consumer waits with ``BLMOVE key key RIGHT
RIGHT``, which moves a list's last element onto its own end (the list
is left as it was) and so returns as soon as the queue holds a message,
taking nothing; it then takes with the script.
"""
from __future__ import annotations

import hashlib
from typing import Any

#: KEYS: the queue keys, in the order to look in, then unacked, unacked_index, pyfi.holders;
#: ARGV: the holder id, the time (kombu's restores compare it with the visibility timeout).
#: Returns {position of the key, message}, or false when every queue is empty. A message that is
#: not kombu's JSON is returned unnoted (kombu's consumer cannot read it either).
TAKE_SCRIPT = """
local queues = #KEYS - 3
local unacked, index, holders = KEYS[queues + 1], KEYS[queues + 2], KEYS[queues + 3]
local function note(item)
    local properties = cjson.decode(item)['properties']
    local info = properties['delivery_info']
    local tag = properties['delivery_tag']
    local record = '[' .. item .. ',' .. cjson.encode(info['exchange']) .. ',' .. cjson.encode(info['routing_key']) .. ']'
    redis.call('HSET', unacked, tag, record)
    redis.call('ZADD', index, ARGV[2], tag)
    redis.call('HSET', holders, tag, ARGV[1])
end
for position = 1, queues do
    local item = redis.call('RPOP', KEYS[position])
    if item then
        pcall(note, item)
        return {position, item}
    end
end
return false
"""
TAKE_SHA = hashlib.sha1(TAKE_SCRIPT.encode()).hexdigest()
#: seconds a consumer of several queues waits on each in turn (Redis blocks on one list at a time)
WAIT_IN_TURN = 0.05


def take_command(sha: str | None, keys: list[str], holder: str, now: float) -> list[Any]:
    """The command that runs the take script: EVALSHA once Redis knows the script (``sha``), EVAL until then."""
    head = ["EVALSHA", sha] if sha else ["EVAL", TAKE_SCRIPT]
    return [*head, len(keys), *keys, holder, repr(now)]


def wait_command(key: str, timeout: float) -> list[Any]:
    """Block until the list ``key`` holds a message (at most ``timeout`` seconds), taking nothing."""
    return ["BLMOVE", key, key, "RIGHT", "RIGHT", repr(timeout)]


def is_noscript(error: Exception) -> bool:
    """Redis forgot its scripts (it restarted, or SCRIPT FLUSH): the take must be sent with the script's text."""
    return str(error).startswith("NOSCRIPT")
