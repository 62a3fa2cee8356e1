"""The lb's impairment stage: loss, corruption, duplication, reordering and delay, per direction.

This machine's kernel has no `netem`, and a worker's own `--loss` knob only
tests nperf's stack against itself. The lb sits between the port and the
workers, so a stage there impairs what a device under test (or Linux on a
TAP port) really sends and receives. Each direction (`TO_WORKERS`: port →
workers, `TO_PORT`: workers → port) has its own parameters, random state
and counters; a frame's way through it:

1. lost (freed) with `loss_ppm`;
2. corrupted with `corrupt_ppm`: one byte of its TCP, UDP or ICMP payload
   (of the checksum field when there is none) is flipped, so that the
   receiver's checksum catches it (frames without such a part, or a UDP one
   without checksum, are passed untouched: a flip in a MAC or IP address
   would be a misdelivery, not a corruption);
3. duplicated with `duplicate_ppm`: a copy in a new mbuf follows it;
4. delayed by `delay` ± `jitter` TSC cycles on a time wheel (slots of
   `tick` cycles); with jitter, frames overtake each other, as on a real
   path;
5. when it leaves the wheel (at once without delay), held back with
   `reorder_ppm` until `reorder_depth` later frames have passed, or for
   `hold` cycles when the traffic stops;
6. queued on `ready`, from which the lb takes what its next step can hold.

Draws come from a seeded xorshift, so a run is repeatable. Every frame is
counted: frames in + duplicates = frames out + lost + overflow (frames
freed because the stage was full) + discarded at stop, and the counters say
how many were corrupted, delayed and reordered. Off (the default), the
lb's loop does not call the stage at all.
"""
from collections import namedtuple

import numpy as np

from nperf.kernels import io, mbuf
from nperf.kernels.bytes_util import copy_bytes, xorshift64
from nperf.kernels.jit import inline, kernel

TO_WORKERS, TO_PORT = 0, 1
DIRECTIONS = ("to_workers", "to_port")

PARAM_NAMES = (
    "on",               # 1: the direction impairs
    "loss_ppm",         # per million frames
    "corrupt_ppm",
    "duplicate_ppm",
    "reorder_ppm",
    "reorder_depth",    # frames that overtake a reordered one
    "delay",            # TSC cycles
    "jitter",           # TSC cycles, ± around delay
    "tick",             # TSC cycles per wheel slot
    "hold",             # TSC cycles a reordered frame waits at most
    "seed",
)
(P_ON, P_LOSS, P_CORRUPT, P_DUPLICATE, P_REORDER, P_DEPTH, P_DELAY, P_JITTER, P_TICK, P_HOLD,
 P_SEED) = range(len(PARAM_NAMES))

COUNTER_NAMES = (
    "frames",           # frames into the stage
    "lost",             # freed on purpose
    "corrupted",        # a byte flipped
    "duplicated",       # copies made
    "delayed",          # put on the wheel
    "reordered",        # held back
    "out",              # frames taken out of the stage
    "overflow",         # freed: the wheel slot or the ready queue was full
    "no_mbuf",          # a duplicate not made: no free mbuf
    "discarded_at_stop",
)
(C_FRAMES, C_LOST, C_CORRUPTED, C_DUPLICATED, C_DELAYED, C_REORDERED, C_OUT, C_OVERFLOW, C_NO_MBUF,
 C_DISCARDED) = range(len(COUNTER_NAMES))

STATE_WORDS = ("rng", "ready_head", "ready_tail", "wheel_tick", "held", "trash", "wheel_frames")
S_RNG, S_HEAD, S_TAIL, S_TICK, S_HELD, S_TRASH, S_WHEEL = range(len(STATE_WORDS))

WHEEL_SLOTS = 4096          # the wheel covers WHEEL_SLOTS ticks
TICK_S = 10e-6              # of 10 us: 40.96 ms
MAX_DELAY_S = 0.040         # delay + jitter: what the wheel can hold
SLOT_FRAMES = 128           # frames per slot: 12.8 Mpps through one direction
SPILL = 8                   # slots tried after a full one
READY = 8192
HOLD = 64                   # reordered frames held at once
TRASH = 64                  # frames to free, freed in bulk

Impairment = namedtuple("Impairment", ("params", "state", "counters", "ready", "wheel", "wheel_len",
                                       "held", "held_left", "held_since", "trash", "one"))


def new_impairment(directions: dict | None, tsc_hz: float, seed: int = 1) -> Impairment:
    """The stage's arrays. `directions` maps TO_WORKERS / TO_PORT to a dict of loss, corrupt,
    duplicate, reorder (percent), depth, delay_ms, jitter_ms; a direction left out does not
    impair. Without any, the arrays are token-sized."""
    directions = directions or {}
    params = np.zeros((2, len(PARAM_NAMES)), np.int64)
    for d, p in directions.items():
        params[d, P_ON] = 1
        for name, param in (("loss", P_LOSS), ("corrupt", P_CORRUPT), ("duplicate", P_DUPLICATE),
                            ("reorder", P_REORDER)):
            params[d, param] = int(round(p.get(name, 0) * 10_000))     # percent -> per million
        params[d, P_DEPTH] = p.get("depth", 3)
        params[d, P_DELAY] = int(p.get("delay_ms", 0) * 1e-3 * tsc_hz)
        params[d, P_JITTER] = int(p.get("jitter_ms", 0) * 1e-3 * tsc_hz)
        params[d, P_TICK] = max(1, int(TICK_S * tsc_hz))
        params[d, P_HOLD] = params[d, P_DELAY] + int(1e-3 * tsc_hz)
        params[d, P_SEED] = seed
    state = np.zeros((2, len(STATE_WORDS)), np.int64)
    for d in range(2):       # a different stream per direction, never the xorshift's fixed point 0
        state[d, S_RNG] = ((seed + 1) * 0x9E3779B97F4A7C15 + d) % (1 << 62) or 1
    used = bool(directions)
    delayed = any(p.get("delay_ms", 0) or p.get("jitter_ms", 0) for p in directions.values())
    return Impairment(params, state, np.zeros((2, len(COUNTER_NAMES)), np.int64),
                      np.zeros((2, READY if used else 1), np.int64),
                      np.zeros((2, WHEEL_SLOTS if delayed else 1, SLOT_FRAMES if delayed else 1), np.int64),
                      np.zeros((2, WHEEL_SLOTS if delayed else 1), np.int64),
                      np.zeros((2, HOLD), np.int64), np.zeros((2, HOLD), np.int64), np.zeros((2, HOLD), np.int64),
                      np.zeros(TRASH, np.int64), np.zeros(1, np.int64))


def counters(imp: Impairment) -> dict[str, dict[str, int]]:
    """The counts of each direction that impairs, by kind."""
    return {DIRECTIONS[d]: {n: int(v) for n, v in zip(COUNTER_NAMES, imp.counters[d])}
            for d in range(2) if imp.params[d, P_ON]}


@inline
def _random(imp, d):
    x = xorshift64(imp.state[d, S_RNG])
    imp.state[d, S_RNG] = x
    return x & 0x7FFFFFFFFFFFFFFF


@inline
def _chance(imp, d, param):
    """True with probability params[param] per million; draws nothing when that is 0."""
    ppm = imp.params[d, param]
    return ppm > 0 and _random(imp, d) % 1_000_000 < ppm


@inline
def _discard(fns, io_, imp, m):
    k = imp.state[0, S_TRASH]
    imp.trash[k] = m
    k += 1
    if k == imp.trash.shape[0]:
        io.mbuf_free_bulk(fns, io_, imp.trash, k)
        k = 0
    imp.state[0, S_TRASH] = k


@inline
def _empty_trash(fns, io_, imp):
    io.mbuf_free_bulk(fns, io_, imp.trash, imp.state[0, S_TRASH])
    imp.state[0, S_TRASH] = 0


@inline
def _transport(b, n):
    """(offset, end, protocol) of the frame's TCP, UDP, ICMP or ICMPv6 part; end == 0: none."""
    if n >= 34 and b[12] == 0x08 and b[13] == 0x00:
        fragment = (b[20] & 0x3F) != 0 or b[21] != 0
        if b[23] in (1, 6, 17) and not fragment:
            return 14 + (b[14] & 15) * 4, min(n, 14 + (np.int64(b[16]) << 8 | b[17])), np.int64(b[23])
    elif n >= 54 and b[12] == 0x86 and b[13] == 0xDD and b[20] in (6, 17, 58):
        return 54, min(n, 54 + (np.int64(b[18]) << 8 | b[19])), np.int64(b[20])
    return 0, 0, 0


@inline
def _flip_target(b, n, r):
    """The byte to flip: one of the payload, or of the checksum field when there is no payload;
    -1 if the frame has no checksummed transport part. Receivers (Linux, nperf) check a header's
    structure (TCP's data offset, ICMP's type) before its checksum, so a flip there would be counted
    as a malformed segment, not a corrupted one; the payload and the checksum field are read only
    after the checksum is verified."""
    start, end, proto = _transport(b, n)
    if proto == 6:
        header, check = (np.int64(b[start + 12]) >> 4) * 4 if start + 13 <= end else 20, 16
    elif proto == 17:
        header, check = 8, 6
    else:
        header, check = 8, 2
    if end < start + header or end < start + check + 2:
        return -1
    if proto == 17 and b[start + 6] == 0 and b[start + 7] == 0:     # a UDP checksum of 0: none
        return -1
    if end > start + header:
        return start + header + r % (end - start - header)
    return start + check + r % 2


@inline
def _corrupt(imp, d, m):
    """Flip one byte that a checksum covers (see _flip_target); False if the frame has none."""
    b = mbuf.data_view(m)
    r = _random(imp, d)
    at = _flip_target(b, b.shape[0], r)
    if at < 0:
        return False
    b[at] ^= np.uint8(1 + (r >> 32) % 255)
    mbuf.forget_rx_checksums(m)         # on a wire the port would have checked the flipped byte
    return True


@inline
def _duplicate(fns, io_, imp, m):
    """A copy of single-segment frame m in a new mbuf; 0 if there is no mbuf (or m has segments)."""
    n = mbuf.data_len(m)
    if n != mbuf.pkt_len(m) or io.mbuf_alloc_bulk(fns, io_, imp.one, 1) != 1:
        return 0
    c = imp.one[0]
    copy_bytes(mbuf.buffer_view(c), 0, mbuf.data_view(m), 0, n)
    mbuf.set_len(c, n)
    return c


@inline
def _push_ready(fns, io_, imp, d, m):
    cap = imp.ready.shape[1]
    tail = imp.state[d, S_TAIL]
    if tail - imp.state[d, S_HEAD] == cap:
        imp.counters[d, C_OVERFLOW] += 1
        _discard(fns, io_, imp, m)
        return
    imp.ready[d, tail % cap] = m
    imp.state[d, S_TAIL] = tail + 1


@inline
def _release_held(fns, io_, imp, d, i):
    """Held frame i goes to ready; the last held one takes its place."""
    _push_ready(fns, io_, imp, d, imp.held[d, i])
    last = imp.state[d, S_HELD] - 1
    imp.held[d, i] = imp.held[d, last]
    imp.held_left[d, i] = imp.held_left[d, last]
    imp.held_since[d, i] = imp.held_since[d, last]
    imp.state[d, S_HELD] = last


@inline
def _emit(fns, io_, imp, d, m, now):
    """A frame leaves the delay: held back (reordered) or queued; each queued one counts down the held."""
    nheld = imp.state[d, S_HELD]
    if nheld < HOLD and _chance(imp, d, P_REORDER):
        imp.held[d, nheld] = m
        imp.held_left[d, nheld] = imp.params[d, P_DEPTH]
        imp.held_since[d, nheld] = now
        imp.state[d, S_HELD] = nheld + 1
        imp.counters[d, C_REORDERED] += 1
        return
    _push_ready(fns, io_, imp, d, m)
    i = 0
    while i < imp.state[d, S_HELD]:
        imp.held_left[d, i] -= 1
        if imp.held_left[d, i] <= 0:
            _release_held(fns, io_, imp, d, i)
        else:
            i += 1


@inline
def _delay(fns, io_, imp, d, m, now):
    """Onto the wheel slot of its release time, or on at once without delay."""
    delay, jitter = imp.params[d, P_DELAY], imp.params[d, P_JITTER]
    if delay == 0 and jitter == 0:
        _emit(fns, io_, imp, d, m, now)
        return
    if jitter > 0:
        delay += _random(imp, d) % (2 * jitter + 1) - jitter
    if delay <= 0:
        _emit(fns, io_, imp, d, m, now)
        return
    slots = imp.wheel.shape[1]
    last = imp.state[d, S_TICK]
    size = imp.params[d, P_TICK]
    tick = min(max((now + delay + size - 1) // size, last + 1), last + slots - 1)
    slot = tick % slots
    k = imp.wheel_len[d, slot]
    spill = 0
    while k == imp.wheel.shape[2]:       # a full slot: the next ones, a little later
        spill += 1
        if spill == SPILL or tick + spill >= last + slots:
            imp.counters[d, C_OVERFLOW] += 1
            _discard(fns, io_, imp, m)
            return
        slot = (tick + spill) % slots
        k = imp.wheel_len[d, slot]
    imp.wheel[d, slot, k] = m
    imp.wheel_len[d, slot] = k + 1
    imp.state[d, S_WHEEL] += 1
    imp.counters[d, C_DELAYED] += 1


@inline
def offer(fns, io_, imp, d, frames, n, now):
    """Frames frames[:n] enter direction d's stage (it owns them from here)."""
    c = imp.counters
    _due(fns, io_, imp, d, now)          # (also starts the wheel's clock)
    for i in range(n):
        m = frames[i]
        c[d, C_FRAMES] += 1
        if _chance(imp, d, P_LOSS):
            c[d, C_LOST] += 1
            _discard(fns, io_, imp, m)
            continue
        if _chance(imp, d, P_CORRUPT) and _corrupt(imp, d, m):
            c[d, C_CORRUPTED] += 1
        copy = 0
        if _chance(imp, d, P_DUPLICATE):
            copy = _duplicate(fns, io_, imp, m)
            if copy != 0:
                c[d, C_DUPLICATED] += 1
            else:
                c[d, C_NO_MBUF] += 1
        _delay(fns, io_, imp, d, m, now)
        if copy != 0:
            _delay(fns, io_, imp, d, copy, now)
    _empty_trash(fns, io_, imp)


@inline
def _due(fns, io_, imp, d, now):
    """Wheel slots whose time has come, and reordered frames held too long, go to ready."""
    if imp.params[d, P_DELAY] > 0 or imp.params[d, P_JITTER] > 0:
        last = imp.state[d, S_TICK]
        tick = now // imp.params[d, P_TICK]
        if last == 0:
            last = tick - 1
        slots = imp.wheel.shape[1]
        t = last
        while t < tick and imp.state[d, S_WHEEL] > 0:
            t += 1
            slot = t % slots
            k = imp.wheel_len[d, slot]
            imp.wheel_len[d, slot] = 0
            imp.state[d, S_WHEEL] -= k
            for j in range(k):
                _emit(fns, io_, imp, d, imp.wheel[d, slot, j], now)
        imp.state[d, S_TICK] = tick
    i = 0
    while i < imp.state[d, S_HELD]:
        if now - imp.held_since[d, i] > imp.params[d, P_HOLD]:
            _release_held(fns, io_, imp, d, i)
        else:
            i += 1


@inline
def take(fns, io_, imp, d, out, room, now):
    """Up to `room` frames that are due into out[:k]; returns k."""
    _due(fns, io_, imp, d, now)
    cap = imp.ready.shape[1]
    head = imp.state[d, S_HEAD]
    k = min(room, imp.state[d, S_TAIL] - head)
    for i in range(k):
        out[i] = imp.ready[d, (head + i) % cap]
    imp.state[d, S_HEAD] = head + k
    imp.counters[d, C_OUT] += k
    _empty_trash(fns, io_, imp)
    return k


@inline
def room(imp, d):
    """Frames the ready queue can take without overflowing (a frame may come with a copy)."""
    return imp.ready.shape[1] - (imp.state[d, S_TAIL] - imp.state[d, S_HEAD])


@inline
def discard_all(fns, io_, imp):
    """At stop: free every frame the stage holds, counted as discarded."""
    for d in range(2):
        cap = imp.ready.shape[1]
        for i in range(imp.state[d, S_HEAD], imp.state[d, S_TAIL]):
            _discard(fns, io_, imp, imp.ready[d, i % cap])
            imp.counters[d, C_DISCARDED] += 1
        imp.state[d, S_HEAD] = imp.state[d, S_TAIL]
        for slot in range(imp.wheel_len.shape[1]):
            for j in range(imp.wheel_len[d, slot]):
                _discard(fns, io_, imp, imp.wheel[d, slot, j])
                imp.counters[d, C_DISCARDED] += 1
            imp.wheel_len[d, slot] = 0
        imp.state[d, S_WHEEL] = 0
        for i in range(imp.state[d, S_HELD]):
            _discard(fns, io_, imp, imp.held[d, i])
            imp.counters[d, C_DISCARDED] += 1
        imp.state[d, S_HELD] = 0
    _empty_trash(fns, io_, imp)


@kernel
def run(fns, io_, imp, d, frames, n, out, room_, now):
    """offer then take, as one call: what the array tests drive."""
    offer(fns, io_, imp, d, frames, n, now)
    return take(fns, io_, imp, d, out, room_, now)
