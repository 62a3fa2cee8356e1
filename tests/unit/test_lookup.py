"""The client's direct index (nperf.kernels.lookup) against the hash it replaced.

A random run of opens, TIME-WAIT hand-overs, closes and stray lookups over
the seed client's source pairs goes to both structures and to a Python
model: every answer must be the same. Few ports and remotes, so source
pairs are reused and held pairs are asked for by other remotes."""
import random

from nperf.kernels import lookup, tcp_table, time_wait
from nperf.kernels import stack as st
from nperf.kernels.jit import kernel
from nperf.kernels.tcp_table import tuple_keys
from tests.tcp_wire import Wire

INSERT, SET, REMOVE, FIND = range(4)


@kernel
def _apply(s, h, op, k1, k2, v):
    """One operation on the direct index of stack s and on hash h; then what each finds, and whether
    the local pair is free."""
    if op == INSERT:
        lookup.insert(s, k1, k2, v)
        tcp_table.hash_insert(h, k1, k2, v)
    elif op == SET:
        lookup.set_value(s, k1, k2, v)
        tcp_table.hash_set(h, k1, k2, v)
    elif op == REMOVE:
        lookup.remove(s, k1, k2)
        tcp_table.hash_remove(h, k1, k2)
    return lookup.find(s, k1, k2), tcp_table.hash_find(h, k1, k2), lookup.pair_free(s, k2)


def test_the_direct_index_answers_as_the_hash_did_over_a_random_run():
    s = Wire(role="client").s
    assert s.params[st.P_DIRECT] == 1
    h = tcp_table.new_hash(4096)
    p = s.params
    ip0 = int(p[st.P_IP_FIRST])
    locals_ = [(ip0 + i, int(p[st.P_PORT_FIRST]) + j) for i in range(int(p[st.P_IP_COUNT])) for j in range(16)]
    remotes = [(0xC0A80164 + i, 8000 + j) for i in range(3) for j in range(2)]
    rng = random.Random(7)
    held = {}                                   # local pair -> (remote, value): the model
    counts = [0] * 4
    for _ in range(6000):
        lip, lport = rng.choice(locals_)
        remote = rng.choice(remotes)
        if (lip, lport) not in held:
            op, v = INSERT, rng.randrange(64)
            held[(lip, lport)] = (remote, v)
        else:
            owner, v = held[(lip, lport)]
            op = rng.choice((SET, REMOVE, FIND))      # FIND asks as the random remote: the owner or a stranger
            if op == SET:
                remote, v = owner, int(time_wait.TAG) + rng.randrange(64)
                held[(lip, lport)] = (owner, v)
            elif op == REMOVE:
                remote = owner
                del held[(lip, lport)]
        k1, k2 = tuple_keys(remote[0], remote[1], lip, lport)
        direct, hashed, free = _apply(s, h, op, k1, k2, v)
        expect = held[(lip, lport)][1] if held.get((lip, lport), (None,))[0] == remote else -1
        assert (direct, hashed, free) == (expect, expect, (lip, lport) not in held), (op, lip, lport, remote)
        counts[op] += 1
    assert min(counts) > 500                    # every kind of operation ran many times


def test_a_pair_outside_the_source_ranges_has_no_row_and_is_never_free():
    s = Wire(role="client").s
    p = s.params
    for lip, lport in ((int(p[st.P_IP_FIRST]) - 1, int(p[st.P_PORT_FIRST])),
                       (int(p[st.P_IP_FIRST]) + int(p[st.P_IP_COUNT]), int(p[st.P_PORT_FIRST])),
                       (int(p[st.P_IP_FIRST]), int(p[st.P_PORT_LAST]) + 1)):
        k1, k2 = tuple_keys(0xC0A80164, 8000, lip, lport)
        assert _apply(s, tcp_table.new_hash(16), FIND, k1, k2, 0) == (-1, -1, False)
