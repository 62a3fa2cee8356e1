"""A connection's queue of messages to send: the one place that writes it.

Each connection row holds at most APPQ queued messages (`T_Q_KIND`,
`T_Q_FLAGS`, `T_Q_START` stream offset, `T_Q_LEN`, indexed by position %
APPQ between `T_Q_HEAD` and `T_Q_TAIL`): the server's responses in request
order, or the client's one outstanding request. No message bytes are kept:
`app.app_copy` regenerates any byte range from the message's kind and flags.
TCP frees entries from the head once the peer has acknowledged them all.

Over TLS (`T_TLS` set) the messages are plaintext: `tls_layer` encrypts
them into the connection's ciphertext ring, which is TCP's stream, and frees
each entry once it is encrypted; `push` leaves TCP's end of stream alone.

Callers check `room` first (the server parses at most `room` requests; the
client queues one request only when none is outstanding), so `push` never
overwrites an entry TCP still needs.
"""
from nperf.kernels.jit import inline
from nperf.kernels.tcp_table import APPQ, T_Q_FLAGS, T_Q_HEAD, T_Q_KIND, T_Q_LEN, T_Q_START, T_Q_TAIL, T_SND_END, \
    T_TLS


@inline
def room(t, c):
    """How many more messages c can queue."""
    return APPQ - (t[c, T_Q_TAIL] - t[c, T_Q_HEAD])


@inline
def push(t, c, kind, flags, length):
    """Queue a message of `length` bytes after everything c has queued so far."""
    k = t[c, T_Q_TAIL] % APPQ
    t[c, T_Q_KIND + k] = kind
    t[c, T_Q_FLAGS + k] = flags
    t[c, T_Q_LEN + k] = length
    t[c, T_Q_TAIL] += 1
    if t[c, T_TLS] == 0:
        t[c, T_Q_START + k] = t[c, T_SND_END] - 1
        t[c, T_SND_END] += length


@inline
def acked(t, c, ack_off):
    """The peer acknowledged up to sequence offset ack_off: free the messages it has all of."""
    while t[c, T_Q_HEAD] < t[c, T_Q_TAIL]:
        k = t[c, T_Q_HEAD] % APPQ
        if ack_off < t[c, T_Q_START + k] + t[c, T_Q_LEN + k] + 1:
            break
        t[c, T_Q_HEAD] += 1
