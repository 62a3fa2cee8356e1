"""TLS between TCP and the role's application: OpenSSL per connection, called by address.

A worker with `use_https: 1` gives each connection, once TCP has opened it,
a slot of this layer: an OpenSSL `SSL` between two memory BIOs
(`nperf/bindings/tls.c`) and a ciphertext ring. The row's `T_TLS` holds the
slot + 1, and `app` sends the connection's events here instead of to the
role (`role_app`):

* received TCP text is ciphertext: it goes into OpenSSL, which drives the
  handshake and yields plaintext records, handed to the role as if TCP had
  delivered them. Plaintext the role does not take yet (a server whose
  response queue is full) stays in OpenSSL, read with a peek and consumed
  as taken, until output frees the queue;
* the role still queues its messages through `send_queue`, but over TLS
  they are plaintext. Before TCP sends (`tls_output`, from tcp_output), they
  are regenerated record by record, encrypted, and their ciphertext
  appended to the ring, whose bytes are TCP's stream from snd_una on.
  Ciphertext cannot be regenerated for a retransmission as plaintext can,
  so the ring keeps it until the peer acknowledges it; a full ring waits
  for ACKs;
* the role closes as it does over plain TCP (F_FIN_QUEUED); over TLS that
  is taken as a wish (SF_FIN): once every queued message is encrypted, our
  close_notify goes, then the FIN (`_finish`).

A client's handshake starts when TCP opens; the role's side opens (its
first request) when the handshake completes. With session resumption a
client keeps the session of its last connection to close and offers it on
the next one (as wrk does per thread).

Only the per-connection event calls OpenSSL (one call per batch of bytes,
never per byte, never Python). A connection that fails its handshake is
counted by cause, its alert sent, and closed; a slot is taken when TCP
opens a connection and given back when the row is released, so memory
follows the connections open, not `--max-conns` (`nperf.tls.new_layer`
sizes the pool). Slots are reused last-freed first, so the rings' touched
pages stay few.
"""
from collections import namedtuple

import numpy as np

from nperf.bindings.intrinsics import array_addr, call_c
from nperf.kernels import latency, tables
from nperf.kernels.bytes_util import copy_bytes
from nperf.kernels.jit import inline, step
from nperf.kernels.role_app import role_established, role_input, role_message_copy, role_peer_closed
from nperf.kernels.stack import (C_TLS_BYTES_DECRYPTED, C_TLS_BYTES_ENCRYPTED, C_TLS_FAILED_ALERT,
                                 C_TLS_FAILED_CERTIFICATE, C_TLS_FAILED_PEER_CLOSED, C_TLS_FAILED_TIMEOUT,
                                 C_TLS_FULL, C_TLS_HANDSHAKE_US, C_TLS_NO_SLOT, C_TLS_RECORD_ERRORS, C_TLS_RESUMED)
from nperf.kernels.tcp_table import (APPQ, END_IDLE, END_RESET, END_TIMEOUT, F_FIN_QUEUED, T_FLAGS, T_Q_HEAD,
                                     T_Q_LEN, T_Q_TAIL, T_SND_END, T_SND_UNA, T_TLS)

Tls = namedtuple("Tls", ("conf", "slots", "ring", "scratch", "hist"))    # hist: handshake times (latency)

CONF_WORDS = (
    "on",           # 1: every connection gets a slot (use_https); 0: none does
    "ctx",          # the role's SSL_CTX
    "server",       # 1: accept handshakes; 0: start them
    "sni",          # a client's server name (a C string's address), 0: none
    "free",         # the first free slot; -1: none
    "resume",       # client: 1 to keep sessions for resumption
    "session",      # client: the session the next connection offers (an SSL_SESSION), 0: none
    # the per-connection C calls (nperf/bindings/tls.c), by address
    "fn_new", "fn_input", "fn_read", "fn_write", "fn_output", "fn_pending", "fn_state", "fn_close", "fn_free",
    "fn_session", "fn_session_free",
)
(TC_ON, TC_CTX, TC_SERVER, TC_SNI, TC_FREE, TC_RESUME, TC_SESSION, TC_NEW, TC_INPUT, TC_READ, TC_WRITE, TC_OUTPUT,
 TC_PENDING, TC_STATE, TC_CLOSE, TC_FREE_SSL, TC_GET_SESSION, TC_FREE_SESSION) = range(len(CONF_WORDS))
FN_NAMES = ("np_tls_new", "np_tls_input", "np_tls_read", "np_tls_write", "np_tls_output", "np_tls_pending",
            "np_tls_state", "np_tls_close", "np_tls_free", "np_tls_session",
            "np_tls_session_free")      # TC_NEW .. TC_FREE_SESSION

SLOT_WORDS = (
    "ssl",          # the connection's SSL
    "next",         # the next free slot (while free)
    "flags",        # SF_* bits
    "plain_off",    # bytes of the message at the queue's head already encrypted
    "born",         # when TCP opened the connection (us): the handshake's start
)
SL_SSL, SL_NEXT, SL_FLAGS, SL_PLAIN_OFF, SL_BORN = range(len(SLOT_WORDS))

SF_DONE = 1         # the handshake completed
SF_HELD = 2         # plaintext waits in OpenSSL for the role to take it
SF_FIN = 4          # the role closes: close_notify and FIN once everything queued is encrypted
SF_NOTIFIED = 8     # our close_notify is in the output
SF_FAILED = 16      # a handshake or record failed: no more input is read, no more output made
SF_PEER_DONE = 32   # the peer's close_notify arrived
SF_FIN_GIVEN = 64   # F_FIN_QUEUED is ours (_finish), not the role's

RING_BYTES = 1 << 16            # ciphertext a connection holds until acknowledged: its send window
RING_MASK = RING_BYTES - 1
RECORD = 1 << 14                # plaintext per record (TLS's largest)
RECORD_ROOM = RECORD + 512      # ring room a record needs: the text, header, tag and padding
HOLD_BYTES = RING_BYTES         # received ciphertext kept unread while the role takes no plaintext
SCRATCH = RECORD                # plaintext between OpenSSL and the role, either way

# np_tls_* results below 0 (tls.c)
CLOSED = -1
FAILED = -2
CERT_FAILED = -3

# np_tls_state bits
ST_DONE = 1
ST_RESUMED = 2


def new_layer(slots: int, conf: np.ndarray | None = None) -> Tls:
    """A pool of `slots` connections (all free), configured by `conf` (nperf.tls.layer_conf); without
    conf, TLS is off and the pool empty."""
    if conf is None:
        conf = np.zeros(len(CONF_WORDS), np.int64)
        slots = 0
    words = np.zeros((slots, len(SLOT_WORDS)), np.int64)
    words[:, SL_NEXT] = np.arange(1, slots + 1)
    if slots:
        words[-1, SL_NEXT] = -1
    conf[TC_FREE] = 0 if slots else -1
    return Tls(conf, words, tables.zeros((slots, RING_BYTES), np.uint8), np.zeros(SCRATCH, np.uint8),
               np.zeros(latency.BUCKETS, np.int64))


@inline
def _held(t, c):
    """Ciphertext bytes in c's ring: queued, not yet acknowledged (sequence offset 0 is the SYN)."""
    end = t[c, T_SND_END]
    return end - min(max(t[c, T_SND_UNA], 1), end)


@inline
def _ring_addr(s, k):
    return np.int64(array_addr(s.tls.ring)) + k * RING_BYTES


@inline
def _scratch_addr(s):
    return np.int64(array_addr(s.tls.scratch))


@inline
def _drain(s, c, k):
    """OpenSSL's output into c's ring, as far as it has room (TCP's stream grows by it); none once our
    FIN is queued, which ends the stream."""
    t = s.tcb
    conf = s.tls.conf
    ssl = s.tls.slots[k, SL_SSL]
    if s.tls.slots[k, SL_FLAGS] & SF_FIN_GIVEN:
        return
    while True:
        room = RING_BYTES - _held(t, c)
        pos = (t[c, T_SND_END] - 1) & RING_MASK
        if room <= 0:
            return
        got = call_c(conf[TC_OUTPUT], ssl, _ring_addr(s, k) + pos, min(room, RING_BYTES - pos), 0)
        if got <= 0:
            return
        t[c, T_SND_END] += got


@inline
def tls_open(s, c, now):
    """TCP opened c: give it a slot and an SSL (a client's ClientHello goes out); False if none is left."""
    tl = s.tls
    conf = tl.conf
    k = conf[TC_FREE]
    if k < 0:
        s.counters[C_TLS_NO_SLOT] += 1
        return False
    ssl = call_c(conf[TC_NEW], conf[TC_CTX], conf[TC_SERVER], conf[TC_SNI], conf[TC_SESSION])
    if ssl == 0:
        s.counters[C_TLS_NO_SLOT] += 1       # OpenSSL had no memory for it
        return False
    conf[TC_FREE] = tl.slots[k, SL_NEXT]
    tl.slots[k, SL_SSL] = ssl
    tl.slots[k, SL_NEXT] = -1
    tl.slots[k, SL_FLAGS] = 0
    tl.slots[k, SL_PLAIN_OFF] = 0
    tl.slots[k, SL_BORN] = now
    s.tcb[c, T_TLS] = k + 1
    if conf[TC_SERVER] == 0:
        _deliver(s, c, k, now)          # the ClientHello, into OpenSSL's output (tls_output sends it)
    return True


@step
def tls_input(s, c, b, start, n, now):
    """Ciphertext b[start:start+n] arrived on c: taken into OpenSSL, and the plaintext goes to the
    role; what OpenSSL and the role answer goes out with TCP's output (tls_output). While the role
    takes no more plaintext (SF_HELD), OpenSSL keeps at most HOLD_BYTES of unread ciphertext: the
    rest is not taken, so TCP does not acknowledge it and the peer sends it again, as it would to a
    plain role whose queue is full. Returns the bytes taken."""
    k = s.tcb[c, T_TLS] - 1
    sl = s.tls.slots
    conf = s.tls.conf
    f = sl[k, SL_FLAGS]
    if f & (SF_FAILED | SF_PEER_DONE) or (f & SF_FIN_GIVEN and not f & SF_DONE):
        return n          # after an alert, the peer's close_notify, or our FIN in the handshake: nothing more
    if f & SF_HELD:
        n = max(min(n, HOLD_BYTES - call_c(conf[TC_PENDING], sl[k, SL_SSL], 1, 0, 0)), 0)
        if n == 0:
            return n
    if call_c(conf[TC_INPUT], sl[k, SL_SSL], np.int64(array_addr(b)) + start, n, 0) < 0:
        _fail(s, c, k, FAILED, now)
    else:
        _deliver(s, c, k, now)
    return n


@inline
def _deliver(s, c, k, now):
    """Drive the handshake and give the role what plaintext OpenSSL has, as much as it takes."""
    t = s.tcb
    sl = s.tls.slots
    conf = s.tls.conf
    ssl = sl[k, SL_SSL]
    sl[k, SL_FLAGS] &= ~SF_HELD
    while not sl[k, SL_FLAGS] & SF_FAILED:
        got = call_c(conf[TC_READ], ssl, _scratch_addr(s), SCRATCH, 1)        # a peek: taken below
        if not sl[k, SL_FLAGS] & SF_DONE and got != FAILED and got != CERT_FAILED:
            _check_done(s, c, k, now)
        if got == CLOSED:
            sl[k, SL_FLAGS] |= SF_PEER_DONE | SF_FIN        # the peer's close_notify: ours, then FIN
            return
        if got < 0:
            _fail(s, c, k, got, now)
            return
        if got == 0:
            return
        took = role_input(s, c, s.tls.scratch, 0, got, now)
        if took > 0:
            call_c(conf[TC_READ], ssl, _scratch_addr(s), took, 0)
            s.counters[C_TLS_BYTES_DECRYPTED] += took
        if took < got:
            sl[k, SL_FLAGS] |= SF_HELD
            return


@inline
def _check_done(s, c, k, now):
    """Count a handshake that has just completed, and open the role's side."""
    sl = s.tls.slots
    st = call_c(s.tls.conf[TC_STATE], sl[k, SL_SSL], 0, 0, 0)
    if not st & ST_DONE:
        return
    sl[k, SL_FLAGS] |= SF_DONE
    s.counters[C_TLS_RESUMED if st & ST_RESUMED else C_TLS_FULL] += 1
    s.counters[C_TLS_HANDSHAKE_US] += now - sl[k, SL_BORN]
    latency.record(s.tls.hist, now - sl[k, SL_BORN])
    role_established(s, c, now)


@inline
def _fail(s, c, k, code, now):
    """A handshake (counted by cause) or a record failed: send OpenSSL's alert, drop what is queued,
    and close."""
    t = s.tcb
    sl = s.tls.slots
    if sl[k, SL_FLAGS] & SF_DONE:
        s.counters[C_TLS_RECORD_ERRORS] += 1
    else:
        s.counters[C_TLS_FAILED_CERTIFICATE if code == CERT_FAILED else C_TLS_FAILED_ALERT] += 1
    sl[k, SL_FLAGS] |= SF_FAILED | SF_FIN
    t[c, T_Q_HEAD] = t[c, T_Q_TAIL]


@step
def tls_output(s, c, now):
    """Before TCP sends on c: plaintext held for the role goes to it if it has room now, the role's
    queued messages are encrypted into the ring as far as it has room, and a close the role asked for
    (F_FIN_QUEUED, taken over here) becomes close_notify and FIN once all is encrypted."""
    t = s.tcb
    k = t[c, T_TLS] - 1
    sl = s.tls.slots
    if sl[k, SL_FLAGS] & SF_HELD:
        _deliver(s, c, k, now)
    if t[c, T_FLAGS] & F_FIN_QUEUED and not sl[k, SL_FLAGS] & SF_FIN_GIVEN:
        t[c, T_FLAGS] &= ~F_FIN_QUEUED
        sl[k, SL_FLAGS] |= SF_FIN
    _pump(s, c, k, now)
    _finish(s, c, k)


@inline
def _pump(s, c, k, now):
    """Encrypt c's queued plaintext into its ring, record by record, while the ring has room."""
    t = s.tcb
    tl = s.tls
    sl = tl.slots
    conf = tl.conf
    ssl = sl[k, SL_SSL]
    _drain(s, c, k)
    if not sl[k, SL_FLAGS] & SF_DONE or sl[k, SL_FLAGS] & SF_FAILED:
        return
    while t[c, T_Q_HEAD] < t[c, T_Q_TAIL]:
        j = t[c, T_Q_HEAD] % APPQ
        off = sl[k, SL_PLAIN_OFF]
        take = min(t[c, T_Q_LEN + j] - off, RECORD)
        if take > 0:
            if RING_BYTES - _held(t, c) < RECORD_ROOM or call_c(conf[TC_PENDING], ssl, 0, 0, 0) > 0:
                return                                  # the ring waits for ACKs
            role_message_copy(s, c, j, off, tl.scratch, 0, take)
            if call_c(conf[TC_WRITE], ssl, _scratch_addr(s), take, 0) != take:
                _fail(s, c, k, FAILED, now)
                return
            s.counters[C_TLS_BYTES_ENCRYPTED] += take
            _drain(s, c, k)
            off += take
        if off == t[c, T_Q_LEN + j]:
            t[c, T_Q_HEAD] += 1
            off = 0
        sl[k, SL_PLAIN_OFF] = off


@inline
def _finish(s, c, k):
    """The role closes and everything is encrypted: our close_notify (after a completed handshake),
    and once OpenSSL's output is all in the ring, TCP's FIN."""
    t = s.tcb
    sl = s.tls.slots
    conf = s.tls.conf
    f = sl[k, SL_FLAGS]
    if not f & SF_FIN or f & SF_FIN_GIVEN or t[c, T_Q_HEAD] < t[c, T_Q_TAIL]:
        return
    if f & SF_DONE and not f & (SF_NOTIFIED | SF_FAILED):
        call_c(conf[TC_CLOSE], sl[k, SL_SSL], 0, 0, 0)
        sl[k, SL_FLAGS] |= SF_NOTIFIED
        _drain(s, c, k)
    if call_c(conf[TC_PENDING], sl[k, SL_SSL], 0, 0, 0) == 0:
        t[c, T_FLAGS] |= F_FIN_QUEUED
        sl[k, SL_FLAGS] |= SF_FIN_GIVEN


@inline
def tls_peer_closed(s, c, now):
    """The peer's FIN: a handshake not done has failed (peer closed); else the role hears of it, and
    closes as it would (tls_output sends our close_notify and FIN)."""
    k = s.tcb[c, T_TLS] - 1
    sl = s.tls.slots
    if not sl[k, SL_FLAGS] & (SF_DONE | SF_FAILED):
        s.counters[C_TLS_FAILED_PEER_CLOSED] += 1
        sl[k, SL_FLAGS] |= SF_FAILED
    if sl[k, SL_FLAGS] & SF_DONE:
        role_peer_closed(s, c, now)
    sl[k, SL_FLAGS] |= SF_FIN


@inline
def tls_copy(s, c, off, out, pos, n):
    """Stream bytes [off, off+n) of c (all in its ring) into out[pos:]."""
    k = s.tcb[c, T_TLS] - 1
    at = off & RING_MASK
    first = min(n, RING_BYTES - at)
    ring = s.tls.ring[k]
    copy_bytes(out, pos, ring, at, first)
    if first < n:
        copy_bytes(out, pos + first, ring, 0, n - first)


@inline
def tls_closed(s, c, how, now):
    """c is gone: a handshake it never finished failed if the peer ended it or it timed out (a peer's
    FIN was counted by tls_peer_closed; our own close or the exit's is no failure). A client keeps its
    session to resume; the SSL is freed and the slot given back. Returns whether the handshake failed."""
    t = s.tcb
    tl = s.tls
    k = t[c, T_TLS] - 1
    f = tl.slots[k, SL_FLAGS]
    failed = (f & SF_FAILED) != 0 and not f & SF_DONE
    if not f & (SF_DONE | SF_FAILED):
        if how == END_TIMEOUT or how == END_IDLE:
            s.counters[C_TLS_FAILED_TIMEOUT] += 1
            failed = True
        elif how == END_RESET:
            s.counters[C_TLS_FAILED_PEER_CLOSED] += 1
            failed = True
    ssl = tl.slots[k, SL_SSL]
    if tl.conf[TC_RESUME] != 0 and f & SF_DONE:
        _keep_session(s, ssl)
    call_c(tl.conf[TC_FREE_SSL], ssl, 0, 0, 0)
    tl.slots[k, SL_SSL] = 0
    tl.slots[k, SL_NEXT] = tl.conf[TC_FREE]
    tl.conf[TC_FREE] = k
    t[c, T_TLS] = 0
    return failed


@inline
def _keep_session(s, ssl):
    """A client's session for the next connection to offer, in place of the one kept before (TLS 1.3
    sends it after the handshake: a connection closed before it came leaves the old one)."""
    conf = s.tls.conf
    sess = call_c(conf[TC_GET_SESSION], ssl, 0, 0, 0)
    if sess == 0:
        return
    if conf[TC_SESSION] != 0:
        call_c(conf[TC_FREE_SESSION], conf[TC_SESSION], 0, 0, 0)
    conf[TC_SESSION] = sess
