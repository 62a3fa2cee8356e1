"""A wire for driving the TCP stack kernels from Python, without DPDK.

`Wire` builds a server (or, with role="client", a client) `Stack` from a seed config, keeps its free-mbuf stash
topped up with `MemoryMbufs`, and runs it like the poll loop does, one *step*
at a time: let time pass (timers that come due meanwhile fire at their own
tick), deliver frames (`worker_loop.worker_turn`, as the poll loop), run due timers, run the
output work list, then collect and parse what the stack queued to send.
Every frame the stack sends is checked on the way out (Ethernet source, IPv4
and TCP checksums, lengths), and after every step the connection table's
invariants are checked (see `Wire.check_invariants`).

`Peer` is a scripted client: it builds segments for one 4-tuple, keeps its
own sequence numbers, and reassembles the byte stream the server sends it
(every segment the server sends goes to the peer with that 4-tuple).

    w = Wire()
    p = Peer(w)
    p.connect()
    out = p.send(p.request("/hello"))       # segments the server sent back
    assert p.data.endswith(b"...")          # in-order bytes received so far

Frames are built here with struct (not with the code under test). Times are
microseconds (`w.now`); `w.advance(dt)` moves time and runs a step.
"""
from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nperf.config import load_worker
from nperf.bench.mbufs import MemoryMbufs
from nperf.kernels import stack as st
from nperf.kernels import cfn, io, lookup, reassembly, tcp_table, time_wait, timers, worker_loop
from nperf.kernels.net import ipv6_words
from nperf.kernels.tcp_table import STATE_NAMES
from nperf.roles.worker_stack import StackOptions, build_stack

HERE = Path(__file__).resolve().parent
SEED_SERVER = HERE / "seed_configs/memif/test3/s.json"
SEED_CLIENT = HERE / "seed_configs/memif/test3/c.json"

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10
M32 = 0xFFFFFFFF

SERVER_MAC = bytes.fromhex("02000000aa01")
CLIENT_MAC = bytes.fromhex("02000000dd04")
PEER_MAC = bytes.fromhex("02000000bb02")
OTHER_MAC = bytes.fromhex("02000000cc03")
BCAST = b"\xff" * 6
SERVER_IP = "192.168.1.100"
PEER_IP = "192.168.1.10"

T0 = 1_000_000           # the first `now` (µs); deadlines of 0 mean "none" in the stack


# ------------------------------------------------------------------ bytes on the wire

def ip_int(ip: str) -> int:
    return int(ipaddress.IPv4Address(ip))


def ip_str(v: int) -> str:
    return str(ipaddress.IPv4Address(v))


def ones_sum(data: bytes) -> int:
    """RFC 1071 sum of 16-bit big-endian words (odd tail padded), folded."""
    if len(data) % 2:
        data += b"\0"
    total = int(np.frombuffer(data, ">u2").sum(dtype=np.uint64))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def checksum(data: bytes) -> int:
    return ~ones_sum(data) & 0xFFFF


def eth(dst: bytes, src: bytes, ethertype: int, payload: bytes) -> bytes:
    return dst + src + struct.pack("!H", ethertype) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, *, ip_id: int = 1, frag: int = 0x4000,
         ttl: int = 64, options: bytes = b"", total_len: int | None = None, bad_checksum: bool = False) -> bytes:
    """An IPv4 packet (no Ethernet header) with a correct header checksum unless asked otherwise."""
    ihl = 5 + len(options) // 4
    length = ihl * 4 + len(payload) if total_len is None else total_len
    hdr = struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, length, ip_id, frag, ttl, proto, 0,
                      ipaddress.IPv4Address(src).packed, ipaddress.IPv4Address(dst).packed) + options
    csum = checksum(hdr) ^ (0x5555 if bad_checksum else 0)
    return hdr[:10] + struct.pack("!H", csum) + hdr[12:] + payload


def ipv6(src: str, dst: str, next_header: int, payload: bytes, *, payload_len: int | None = None,
         version: int = 6, hop_limit: int = 64) -> bytes:
    """An IPv6 packet (no Ethernet header); payload holds any extension headers, the first of
    type next_header."""
    length = len(payload) if payload_len is None else payload_len
    return struct.pack("!IHBB16s16s", version << 28, length, next_header, hop_limit,
                       ipaddress.IPv6Address(src).packed,
                       ipaddress.IPv6Address(dst).packed) + payload


def pseudo_header(src: str, dst: str, proto: int, length: int) -> bytes:
    """The pseudo-header a TCP, UDP or ICMPv6 checksum covers, IPv4 or IPv6 by the addresses."""
    a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    if a.version == 6:
        return a.packed + b.packed + struct.pack("!IxxxB", length, proto)
    return a.packed + b.packed + struct.pack("!BBH", 0, proto, length)


def ip_packet(src: str, dst: str, proto: int, payload: bytes) -> bytes:
    """An IPv4 or IPv6 packet, by the addresses' version (IPv4 with ipv4's defaults)."""
    if ipaddress.ip_address(src).version == 6:
        return ipv6(src, dst, proto, payload)
    return ipv4(src, dst, proto, payload)


def ethertype_of(ip: str) -> int:
    return 0x86DD if ipaddress.ip_address(ip).version == 6 else 0x0800


def tcp_segment(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
                payload: bytes = b"", options: bytes = b"", *, bad_checksum: bool = False) -> bytes:
    """A TCP header + payload with a correct checksum (options padded with NOPs... at the front)."""
    options = b"\x01" * (-len(options) % 4) + options
    hdr = struct.pack("!HHIIBBHHH", sport, dport, seq & M32, ack & M32, (5 + len(options) // 4) << 4,
                      flags, window, 0, 0) + options
    seg = hdr + payload
    csum = checksum(pseudo_header(src, dst, 6, len(seg)) + seg) ^ (0x0101 if bad_checksum else 0)
    return seg[:16] + struct.pack("!H", csum) + seg[18:]


def tcp_frame(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int, window: int,
              payload: bytes = b"", options: bytes = b"", *, src_mac: bytes = PEER_MAC,
              dst_mac: bytes = SERVER_MAC) -> bytes:
    return eth(dst_mac, src_mac, ethertype_of(src),
               ip_packet(src, dst, 6, tcp_segment(src, dst, sport, dport, seq, ack, flags, window, payload, options)))


def opt_mss(v: int) -> bytes:
    return struct.pack("!BBH", 2, 4, v)


def opt_ws(shift: int) -> bytes:
    return struct.pack("!BBB", 3, 3, shift)


def opt_sack_perm() -> bytes:
    return b"\x04\x02"


def opt_timestamps(val: int = 1, echo: int = 0) -> bytes:
    return struct.pack("!BBII", 8, 10, val, echo)


def linux_syn_options(mss: int = 1460, wscale: int = 7) -> bytes:
    """What a Linux SYN carries: MSS, SACK permitted, timestamps, NOP, window scale (20 bytes)."""
    return opt_mss(mss) + opt_sack_perm() + opt_timestamps() + b"\x01" + opt_ws(wscale)


def arp_frame(op: int, sender_mac: bytes, sender_ip: str, target_mac: bytes, target_ip: str,
              dst_mac: bytes = BCAST) -> bytes:
    body = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sender_mac, ipaddress.IPv4Address(sender_ip).packed,
                       target_mac, ipaddress.IPv4Address(target_ip).packed)
    return eth(dst_mac, sender_mac, 0x0806, body)


def icmp_echo(ident: int, seqno: int, data: bytes, typ: int = 8) -> bytes:
    hdr = struct.pack("!BBHHH", typ, 0, 0, ident, seqno)
    csum = checksum(hdr + data)
    return hdr[:2] + struct.pack("!H", csum) + hdr[4:] + data


def seq_diff(a: int, b: int) -> int:
    """a - b for 32-bit sequence numbers, signed."""
    return (a - b + (1 << 31)) % (1 << 32) - (1 << 31)


def seq_after(a: int, b: int) -> bool:
    return seq_diff(a, b) > 0


def flag_names(flags: int) -> str:
    return "".join(n for b, n in ((SYN, "S"), (FIN, "F"), (RST, "R"), (PSH, "P"), (ACK, "A")) if flags & b) or "-"


@dataclass
class Seg:
    """A TCP segment the stack sent, parsed (absolute 32-bit sequence numbers)."""
    frame: bytes
    dst_mac: bytes
    src_ip: str
    dst_ip: str
    ip_id: int
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int                  # the raw 16-bit field
    options: dict = field(default_factory=dict)  # {"mss": int, "ws": int}
    payload: bytes = b""

    @property
    def seg_len(self) -> int:
        """Sequence space taken: payload + SYN + FIN."""
        return len(self.payload) + (1 if self.flags & SYN else 0) + (1 if self.flags & FIN else 0)

    def __repr__(self) -> str:
        return (f"<{self.src_ip}:{self.sport}>{self.dst_ip}:{self.dport} {flag_names(self.flags)} "
                f"seq={self.seq} ack={self.ack} win={self.window} len={len(self.payload)} opts={self.options}>")


def check_frame(frame: bytes, mac: bytes = SERVER_MAC) -> None:
    """Assert what every frame the stack sends must satisfy."""
    assert len(frame) >= 42, frame.hex()
    assert frame[6:12] == mac, f"source MAC {frame[6:12].hex()}"
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == 0x86DD:
        _check_ipv6(frame[14:])
        return
    if ethertype != 0x0800:
        assert ethertype == 0x0806, hex(ethertype)
        return
    ip = frame[14:]
    ihl = (ip[0] & 0xF) * 4
    assert ip[0] >> 4 == 4 and ihl == 20
    (total,) = struct.unpack_from("!H", ip, 2)
    assert total == len(ip), f"IP total length {total} for {len(ip)} bytes"
    assert ones_sum(ip[:20]) == 0xFFFF, "IPv4 header checksum"
    if ip[9] == 6:
        seg = ip[20:total]
        pseudo = ip[12:20] + struct.pack("!BBH", 0, 6, len(seg))
        assert ones_sum(pseudo + seg) == 0xFFFF, "TCP checksum"
        assert (seg[12] >> 4) * 4 <= len(seg)
    elif ip[9] == 1:
        assert ones_sum(ip[20:total]) == 0xFFFF, "ICMP checksum"


def _check_ipv6(ip: bytes) -> None:
    """An IPv6 packet the stack sent: no extension headers, exact length, upper-layer checksum."""
    assert ip[0] >> 4 == 6 and len(ip) >= 40
    (length,) = struct.unpack_from("!H", ip, 4)
    assert 40 + length == len(ip), f"IPv6 payload length {length} for {len(ip) - 40} bytes"
    assert ip[6] in (6, 17, 58), ip[6]
    src, dst = (str(ipaddress.IPv6Address(ip[o:o + 16])) for o in (8, 24))
    assert ones_sum(pseudo_header(src, dst, ip[6], length) + ip[40:]) == 0xFFFF, "TCP, UDP or ICMPv6 checksum"


def parse_tcp(frame: bytes) -> Seg | None:
    if frame[12:14] == b"\x86\xdd" and len(frame) >= 74 and frame[20] == 6:
        ip, hl, total = frame[14:], 40, 40 + struct.unpack_from("!H", frame, 18)[0]
        src, dst, ip_id = str(ipaddress.IPv6Address(ip[8:24])), str(ipaddress.IPv6Address(ip[24:40])), 0
    elif len(frame) >= 54 and frame[12:14] == b"\x08\x00" and frame[23] == 6:
        ip, hl, total = frame[14:], 20, struct.unpack_from("!H", frame, 16)[0]
        src, dst = ip_str(int.from_bytes(ip[12:16], "big")), ip_str(int.from_bytes(ip[16:20], "big"))
        (ip_id,) = struct.unpack_from("!H", ip, 4)
    else:
        return None
    t = ip[hl:total]
    sport, dport, seq, ack, off, flags, window = struct.unpack_from("!HHIIBBH", t)
    doff = (off >> 4) * 4
    options, i = {}, 20
    while i < doff:
        kind = t[i]
        if kind == 0:
            break
        if kind == 1:
            i += 1
            continue
        length = t[i + 1]
        if kind == 2 and length == 4:
            options["mss"] = struct.unpack_from("!H", t, i + 2)[0]
        elif kind == 3 and length == 3:
            options["ws"] = t[i + 2]
        else:
            options[kind] = t[i + 2:i + length]
        i += max(length, 2)
    return Seg(frame, frame[0:6], src, dst, ip_id, sport, dport, seq, ack, flags, window, options,
               bytes(t[doff:]))


# ------------------------------------------------------------------ the wire

class Wire:
    """A server (or client) stack plus the loop around it (see the module docstring)."""

    def __init__(self, max_conns: int = 64, config: Path | None = None, rng_seed: int = 0x1234_5678_9ABC,
                 pool: int = 2048, check: bool = True, role: str = "server", port_checksums: bool = False,
                 **options):
        self.role = role
        self.mac = SERVER_MAC if role == "server" else CLIENT_MAC
        cfg = load_worker(str(config or (SEED_SERVER if role == "server" else SEED_CLIENT)))[0]
        options.setdefault("timestamps", False)      # exact segments below are those without the option
        self.opts = StackOptions(max_conns=max_conns, **options)
        self.s = build_stack(cfg, role, self.mac, self.opts, port_checksums)
        self.rx_flags = 0            # the offload flags of every frame received (a port's: mbuf.RX_*)
        self.tcb = tcp_table.Columns(self.s.tcb)       # named columns: self.tcb.snd_una[c]
        self.s.var[st.V_RNG] = rng_seed
        self.max_conns = max_conns
        self.now = T0
        self.s.wheel[timers.WHEEL_LAST] = T0 // timers.TICK_US
        self.mbufs = MemoryMbufs(pool)
        self._base, self._stride = int(self.mbufs.addrs[0]), self.mbufs.stride
        self.pool = io.new_pool(self.mbufs.addrs[::-1])
        self.io = io.array_io(io.new_queue(worker_loop.BURST), io.new_queue(pool), self.pool)
        self.fns = np.zeros(len(cfn.CFN_NAMES), np.int64)      # the ARRAYS kind calls no C
        self.scratch = worker_loop.LoopScratch().arrays()
        self.frames: list[bytes] = []         # every frame sent in the last step
        self.out: list[Seg] = []              # its TCP segments
        self.log: list[Seg] = []              # every TCP segment sent so far
        self.peers: dict[tuple[str, int, str, int], Peer] = {}
        self.listener = None       # gets every segment no Peer claims (see tests.http_peer)
        self.check = check
        self.input_classes: list[tuple[str, ...]] = []   # per received burst (step): counters it moved

    # --- mbufs --------------------------------------------------------
    def _index(self, addr: int) -> int:
        i, rem = divmod(int(addr) - self._base, self._stride)
        assert rem == 0 and 0 <= i < len(self.mbufs.addrs), hex(addr)
        return i

    def _new_mbuf(self, frame: bytes) -> int:
        top = int(self.pool[io.POOL_TOP])
        assert top > 0, "the wire's pool is empty"
        addr = int(self.pool[top])
        self.pool[io.POOL_TOP] = top - 1
        self.mbufs.fill(self._index(addr), frame, self.rx_flags)
        return addr

    def _free_mbuf(self, addr: int) -> None:
        top = int(self.pool[io.POOL_TOP]) + 1
        self.pool[top] = addr
        self.pool[io.POOL_TOP] = top

    # --- counters -----------------------------------------------------
    def counters(self) -> dict[str, int]:
        return {name: int(v) for name, v in zip(st.COUNTER_NAMES, self.s.counters)}

    def counter(self, name: str) -> int:
        return int(self.s.counters[st.COUNTER_NAMES.index(name)])

    # --- running ------------------------------------------------------
    def step(self, frames=(), dt: int = 0, burst: bool = False) -> list[Seg]:
        """Let dt pass (timers that come due meanwhile run at their tick, as in the poll loop), then
        deliver frames, run timers and output. Returns the TCP segments sent in all that time
        (`self.frames`: every frame). The frames arrive one per poll-loop turn, or with `burst` all
        in one turn (one received burst: all are taken in before any output runs)."""
        target = self.now + dt
        frames_out, segs_out = [], []
        for _ in range(100_000):
            tick = self._next_timer_tick()
            if tick is None or tick * timers.TICK_US >= target or tick * timers.TICK_US <= self.now:
                break
            self.now = tick * timers.TICK_US
            self._turn([()])
            frames_out += self.frames
            segs_out += self.out
        self.now = target
        self._turn([tuple(frames)] if burst else [(f,) for f in frames] or [()])
        self.frames, self.out = frames_out + self.frames, segs_out + self.out
        return self.out

    def _next_timer_tick(self) -> int | None:
        t = self.tcb
        due = t.w_due[:self.max_conns][t.state[:self.max_conns] != tcp_table.CLOSED]
        due = due[due >= 0]
        return int(due.min()) if len(due) else None

    def _turn(self, bursts) -> None:
        """Poll-loop turns at self.now (worker_turn, as in production), one per burst of received
        frames (an empty one: a turn with none); then collect what was sent."""
        s = self.s
        out = []
        for burst in bursts:
            before = s.counters.copy()
            if burst:
                m = np.array([self._new_mbuf(f) for f in burst], np.int64)
                io._queue_put(self.io.rx, m, len(m))
            sent_before = s.counters[st.C_TX_FRAMES]
            worker_loop.worker_turn(self.fns, self.io, s, self.scratch, self.now)
            sent = self._take_sent()
            assert s.counters[st.C_TX_FRAMES] - sent_before == len(sent), "tx_frames != frames transmitted"
            out += sent
            if burst:
                self.input_classes.append(tuple(n for n, a, b in zip(st.COUNTER_NAMES, before, s.counters) if a != b))
        self._collect(out)
        if self.check:
            self.check_invariants()

    def advance(self, dt: int) -> list[Seg]:
        return self.step((), dt)

    def advance_to(self, t: int) -> list[Seg]:
        assert t >= self.now
        return self.step((), t - self.now)

    def _take_sent(self) -> list[bytes]:
        """The frames the stack transmitted, their mbufs back in the pool."""
        q = self.io.tx
        frames = []
        while q[io.Q_HEAD] < q[io.Q_TAIL]:
            m = int(q[io.Q_FIRST + q[io.Q_HEAD] % (q.shape[0] - io.Q_FIRST)])
            q[io.Q_HEAD] += 1
            frames.append(self.mbufs.data(self._index(m)))
            self._free_mbuf(m)
        return frames

    def _collect(self, frames: list[bytes]) -> None:
        self.frames, self.out = frames, []
        for frame in self.frames:
            check_frame(frame, self.mac)
            seg = parse_tcp(frame)
            if seg is not None:
                self.out.append(seg)
                self.log.append(seg)
                peer = self.peers.get((seg.dst_ip, seg.dport, seg.src_ip, seg.sport))
                if peer is not None:
                    peer._receive(seg)
                elif self.listener is not None:
                    self.listener.receive(seg)

    # --- connection table ---------------------------------------------
    def entry(self, rip: str, rport: int, lip: str = SERVER_IP, lport: int = 8000) -> int:
        """The hash value of a 4-tuple: a slot, a TIME-WAIT record (>= time_wait.TAG) or -1."""
        if ipaddress.ip_address(rip).version == 6:
            (rhi, rlo), (lhi, llo) = ipv6_words(ipaddress.ip_address(rip)), ipv6_words(ipaddress.ip_address(lip))
            return self._entry(rlo, rport, llo, lport, rhi, lhi)
        return self._entry(ip_int(rip), rport, ip_int(lip), lport)

    def _entry(self, rip: int, rport: int, lip: int, lport: int, rip_hi: int = 0, lip_hi: int = 0) -> int:
        if rip_hi:                                      # IPv6: folded keys (tcp_table.tuple_keys)
            return int(lookup.find(self.s, *tcp_table.tuple_keys(rip, rport, lip, lport, rip_hi, lip_hi)))
        return int(lookup.find(self.s, (rip << 16) | rport, (lip << 16) | lport))

    def slot(self, rip: str, rport: int, lip: str = SERVER_IP, lport: int = 8000) -> int | None:
        """The connection row of a 4-tuple (found through the stack's own hash), or None."""
        c = self.entry(rip, rport, lip, lport)
        return None if c < 0 or c >= time_wait.TAG else c

    def state(self, c: int) -> str:
        return STATE_NAMES[int(self.tcb.state[c])]

    def live(self) -> int:
        return int(np.count_nonzero(self.tcb.state != tcp_table.CLOSED))

    def check_invariants(self) -> None:
        """The table, hash, free stack and timer wheel agree; no live connection lacks a timer."""
        s, t = self.s, self.tcb
        cap = self.max_conns
        states = t.state[:cap]
        live = np.flatnonzero(states != tcp_table.CLOSED)
        top = int(s.free[0])
        assert len(live) == cap - top, f"{len(live)} live slots but {cap - top} taken from the free stack"
        free = s.free[1:top + 1]
        assert len(set(free.tolist())) == top, "a slot is twice on the free stack"
        assert np.all(states[free] == tcp_table.CLOSED), "a live slot is on the free stack"
        vals = s.pairs[:, lookup.PVAL] if s.params[st.P_DIRECT] else s.hash[:, tcp_table.HASH_VAL]
        held = vals[vals >= 0]                  # one pass: a client's direct table has 512K rows
        rows = held[held < time_wait.TAG]
        assert len(rows) == len(live), "hash entries != live connections"
        assert sorted(rows.tolist()) == sorted(live.tolist()), "hash values != live slots"
        ring, head, tail = s.tw, int(s.var[st.V_TW_HEAD]), int(s.var[st.V_TW_TAIL])
        waiting = {(head + k) % ring.shape[0] for k in range(tail - head)
                   if ring[(head + k) % ring.shape[0], time_wait.TW_DUE] != 0}
        records = (held[held >= time_wait.TAG] - time_wait.TAG).tolist()
        assert sorted(records) == sorted(waiting), "hash TIME-WAIT entries != live TIME-WAIT records"
        for i in records:
            k1, k2 = int(ring[i, time_wait.TW_K1]), int(ring[i, time_wait.TW_K2])
            assert int(lookup.find(s, k1, k2)) == time_wait.TAG + i, f"record {i} not found by its keys"
        self._check_ooo_pool(live)
        heads = s.wheel
        last_tick = int(s.wheel[timers.WHEEL_LAST])
        w_due, w_next, born = t.w_due, t.w_next, t.born
        closed = np.flatnonzero(states == tcp_table.CLOSED)
        due = w_due[closed]
        on_wheel = closed[~((due == -1) | (due == 0) & (born[closed] == 0))]
        assert not len(on_wheel), f"closed slot {on_wheel[0]} still on the wheel"
        rip, rport, lip, lport, rip_hi, lip_hi = t.rip, t.rport, t.lip, t.lport, t.rip_hi, t.lip_hi
        t_rto, t_dack, t_end = t.t_rto, t.t_dack, t.t_end
        for c in live.tolist():
            found = self._entry(int(rip[c]), int(rport[c]), int(lip[c]), int(lport[c]), int(rip_hi[c]), int(lip_hi[c]))
            assert found == c, f"slot {c} ({self.state(c)}) not found by its 4-tuple (got {found})"
            deadlines = [int(d) for d in (t_rto[c], t_dack[c], t_end[c]) if d > 0]
            assert deadlines, f"live slot {c} in {self.state(c)} has no deadline: it could live forever"
            due_tick = -(-min(deadlines) // timers.TICK_US)
            assert due_tick > last_tick, f"slot {c} ({self.state(c)}): deadline tick {due_tick} passed, now {self.now}"
            w = int(w_due[c])
            assert last_tick < w <= due_tick, \
                f"slot {c} ({self.state(c)}) on the wheel at tick {w}: deadline tick {due_tick}, last tick {last_tick}"
            x = int(heads[w & (timers.WHEEL - 1)])
            for _ in range(cap + 1):
                if x == c or x < 0:
                    break
                x = int(w_next[x])
            assert x == c, f"slot {c} is not linked in its wheel slot"

    def _check_ooo_pool(self, live: np.ndarray) -> None:
        """Every out-of-order slot is free or kept by one live connection, in a list sorted by start
        as long as its count says; no closed row keeps any."""
        segs, t = self.s.ooo.segs, self.tcb
        if self.s.counters[st.C_TCP_OOO_KEPT] == 0:
            return                      # no slot was ever taken (and walking 8,192 of them each step is slow)
        taken = ooo_chain(self.s, int(self.s.var[st.V_OOO_FREE]))
        keeping = np.flatnonzero(t.ooo_head[:self.max_conns] != 0)
        assert set(keeping.tolist()) <= set(live.tolist()), "a closed row keeps out-of-order segments"
        for c in keeping.tolist():
            kept = ooo_chain(self.s, int(t.ooo_head[c]) - 1)
            starts = segs[kept, reassembly.S_START].tolist()
            assert starts == sorted(starts), f"connection {c}'s kept segments out of order"
            assert len(kept) == t.ooo_n[c], f"connection {c} keeps {len(kept)} segments, its count says {t.ooo_n[c]}"
            taken += kept
        assert len(set(taken)) == len(taken), "an out-of-order slot is in two lists"
        assert len(taken) == segs.shape[0], f"{segs.shape[0] - len(taken)} out-of-order slots lost"


def ooo_chain(s, first: int) -> list[int]:
    """The out-of-order pool's slots on the list starting at slot `first` (-1: empty), in order: the
    free list or a connection's kept segments (nperf.kernels.reassembly). A cycle fails."""
    segs, out, x = s.ooo.segs, [], first
    while x >= 0:
        assert len(out) < segs.shape[0], f"the out-of-order list from slot {first} runs in a cycle"
        out.append(x)
        x = int(segs[x, reassembly.S_NEXT])
    return out


# ------------------------------------------------------------------ the peer

class Peer:
    """A scripted TCP client for one 4-tuple (absolute 32-bit sequence numbers).

    `snd_nxt` is the next sequence number this peer sends, `rcv_nxt` the next
    it expects from the server; `data` the server's in-order stream bytes.
    Methods that send return the segments the server sent to this peer in
    that step.
    """

    def __init__(self, wire: Wire, ip: str = PEER_IP, port: int = 40000, server_ip: str = SERVER_IP,
                 server_port: int = 8000, *, isn: int = 0x7FFF_FF00, mss: int = 1460, wscale: int | None = 7,
                 window: int = 65535, mac: bytes = PEER_MAC, check_window: bool = True):
        self.w, self.ip, self.port, self.server_ip, self.server_port = wire, ip, port, server_ip, server_port
        self.isn, self.mss, self.wscale, self.window, self.mac = isn, mss, wscale, window, mac
        self.check_window = check_window     # assert the server never sends beyond the window offered
        self.snd_nxt = isn
        self.rcv_nxt: int | None = None
        self.irs: int | None = None
        self.server_wscale = 0           # shift of the server's window field (after WS negotiation)
        self.data = bytearray()
        self.fin_received = False
        self.segs: list[Seg] = []        # every segment the server sent to this peer
        self.synack_options: dict = {}
        self.owed: list[int] = []        # rcv_nxt after each in-order segment not yet ACKed by fetch()
        self.edge: int | None = None     # right edge of the window this peer offered
        wire.peers[(ip, port, server_ip, server_port)] = self

    def reset(self, isn: int) -> None:
        """Forget the last connection: the next SYN starts a new one from `isn`."""
        self.isn = self.snd_nxt = isn
        self.rcv_nxt = self.irs = None
        self.server_wscale = 0
        self.data = bytearray()
        self.fin_received = False
        self.synack_options = {}
        self.owed = []
        self.edge = None

    # --- building -----------------------------------------------------
    def frame(self, flags: int, payload: bytes = b"", *, seq: int | None = None, ack: int | None = None,
              window: int | None = None, options: bytes = b"") -> bytes:
        """A frame from this peer (does not change the peer's sequence numbers)."""
        window = self.window if window is None else window
        wfield = min(window if flags & SYN else window >> self.server_shift, 65535)
        return tcp_frame(self.ip, self.server_ip, self.port, self.server_port,
                         self.snd_nxt if seq is None else seq,
                         (self.rcv_nxt or 0) if ack is None else ack, flags, wfield, payload, options,
                         src_mac=self.mac)

    def _sent(self, frame: bytes) -> bytes:
        """Note the right edge of the window a frame offers (its ACK + scaled window)."""
        o = 14 + (40 if frame[12:14] == b"\x86\xdd" else 20)
        flags, window = frame[o + 13], struct.unpack_from("!H", frame, o + 14)[0]
        if flags & ACK and not flags & (SYN | RST) and self.rcv_nxt is not None:
            (ack,) = struct.unpack_from("!I", frame, o + 8)
            edge = (ack + (window << self.server_shift)) & M32
            if self.edge is None or seq_after(edge, self.edge):
                self.edge = edge
        return frame

    @property
    def server_shift(self) -> int:
        """The shift the server applies to this peer's window field."""
        return self.wscale if self.wscale is not None and "ws" in self.synack_options else 0

    def _mine(self) -> list[Seg]:
        return [g for g in self.w.out if (g.dst_ip, g.dport, g.src_ip, g.sport) ==
                (self.ip, self.port, self.server_ip, self.server_port)]

    def _receive(self, seg: Seg) -> None:
        self.segs.append(seg)
        if seg.flags & RST:
            return
        if seg.flags & SYN:
            if self.irs is None or seg.seq == self.irs:
                self.irs = seg.seq
                self.rcv_nxt = (seg.seq + 1) & M32
                self.synack_options = seg.options
                if "ws" in seg.options and self.wscale is not None:
                    self.server_wscale = seg.options["ws"]
            return
        if self.rcv_nxt is None:
            return
        if seg.payload and self.edge is not None and self.check_window:
            assert not seq_after((seg.seq + len(seg.payload)) & M32, self.edge), \
                f"{seg} beyond the window offered (right edge {self.edge})"
        pos = seq_diff(seg.seq, (self.irs + 1) & M32)        # stream offset of the first byte
        if 0 <= pos < len(self.data) and seg.payload:       # bytes sent before must be sent the same again
            old = seg.payload[:len(self.data) - pos]
            assert old == self.data[pos:pos + len(old)], f"{seg} resends different bytes"
        off = seq_diff(seg.seq, self.rcv_nxt)
        if off <= 0 <= off + len(seg.payload):
            new = seg.payload[-off:]
            self.data += new
            self.rcv_nxt = (self.rcv_nxt + len(new)) & M32
            if seg.flags & FIN:
                self.rcv_nxt = (self.rcv_nxt + 1) & M32
                self.fin_received = True
            if new or seg.flags & FIN:
                self.owed.append(self.rcv_nxt)

    # --- sending ------------------------------------------------------
    def put(self, flags: int, payload: bytes = b"", *, advance: bool = True, dt: int = 0, **kw) -> list[Seg]:
        """Send one segment (at snd_nxt unless seq= is given) and run a step; this peer's output."""
        f = self.frame(flags, payload, **kw)
        if advance and "seq" not in kw:
            self.snd_nxt = (self.snd_nxt + len(payload) + (1 if flags & (SYN) else 0)
                            + (1 if flags & FIN else 0)) & M32
        self.w.step([self._sent(f)], dt)
        return self._mine()

    def syn(self, options: bytes | None = None, **kw) -> list[Seg]:
        if options is None:
            options = opt_mss(self.mss) + (opt_ws(self.wscale) if self.wscale is not None else b"")
        self.snd_nxt = self.isn
        return self.put(SYN, options=options, **kw)

    def connect(self, options: bytes | None = None, dt: int = 0) -> int:
        """SYN, check the SYN-ACK, ACK it; the server's slot for this connection."""
        out = self.syn(options, dt=dt)
        assert [g.flags for g in out] == [SYN | ACK], out
        assert out[0].ack == (self.isn + 1) & M32
        assert not self.ack()
        c = self.slot
        assert c is not None and self.state == "ESTABLISHED", self.state
        return c

    def send(self, data: bytes, flags: int = PSH | ACK, **kw) -> list[Seg]:
        return self.put(flags, data, **kw)

    def ack(self, **kw) -> list[Seg]:
        return self.put(ACK, **kw)

    def fin(self, data: bytes = b"", **kw) -> list[Seg]:
        return self.put(FIN | ACK | (PSH if data else 0), data, **kw)

    def rst(self, seq: int | None = None, flags: int = RST, **kw) -> list[Seg]:
        return self.put(flags, seq=self.snd_nxt if seq is None else seq, advance=False, **kw)

    def ack_owed(self, *, window: int | None = None, per: int = 2, dt: int = 100) -> bool:
        """ACK what arrived since the last call like a Linux receiver: one ACK per `per` in-order
        segments (and one for the last), all in one step `dt` later. False if nothing was owed."""
        owed, self.owed = self.owed, []
        if not owed:
            return False
        acks = owed[per - 1::per]
        if not acks or acks[-1] != owed[-1]:
            acks.append(owed[-1])
        self.w.step([self._sent(self.frame(ACK, ack=a, window=window)) for a in acks], dt)
        return True

    def fetch(self, until: int, *, window: int | None = None, per: int = 2, max_steps: int = 100_000,
              dt: int = 100) -> int:
        """ack_owed() until `until` stream bytes are in; returns the number of steps."""
        steps = 0
        while len(self.data) < until:
            steps += 1
            assert steps <= max_steps, f"stuck at {len(self.data)} of {until} bytes"
            if not self.ack_owed(window=window, per=per, dt=dt):
                raise AssertionError(f"the server went quiet at {len(self.data)} of {until} bytes")
        return steps

    # --- the server's view --------------------------------------------
    @property
    def slot(self) -> int | None:
        return self.w.slot(self.ip, self.port, self.server_ip, self.server_port)

    @property
    def state(self) -> str:
        v = self.w.entry(self.ip, self.port, self.server_ip, self.server_port)
        if v >= time_wait.TAG:
            return "TIME_WAIT"
        return "CLOSED" if v < 0 else self.w.state(v)

    def server_window(self, seg: Seg) -> int:
        """The window a segment of the server offers, in bytes."""
        return seg.window if seg.flags & SYN else seg.window << self.server_wscale

    def seq_off(self, seq: int) -> int:
        """seq relative to the server's first data byte (irs + 1)."""
        return (seq - self.irs - 1) & M32

    @staticmethod
    def request(path: str = "/hello", close: bool = False, host: str = "192.168.1.100:8000",
                extra: str = "") -> bytes:
        return (f"GET {path} HTTP/1.1\r\nHost: {host}\r\n" + ("Connection: close\r\n" if close else "")
                + extra + "\r\n").encode()


# left out of changed() unless asked: byte counts, and tx_frames (the wire checks it equals the frames sent)
BYTE_COUNTERS = ("rx_bytes", "tx_bytes", "tcp_bytes_in", "tcp_bytes_out", "tcp_retransmit_bytes", "tx_frames")


def changed(w: Wire, before: dict, ignore=BYTE_COUNTERS) -> dict:
    """Counters that moved since `before` (byte counts left out unless asked)."""
    now = w.counters()
    return {k: now[k] - before[k] for k in now if now[k] != before[k] and k not in ignore}
