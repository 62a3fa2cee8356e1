"""A minimal DPDK secondary for lb tests.

Attaches to the lb with `--prefix`, takes ring pair `--ring`, prints
`attached <mac>`, waits for a line on stdin, sends the frames of `--send`
(an .npz with `frames` and `lens`) on its TX ring, then records what arrives
on its RX ring until `--expect` frames came or `--seconds` passed, and writes
them to `--out`.
"""
import argparse
import sys
import time

import numpy as np

from nperf import eal
from nperf.bindings import dpdk
from nperf.kernels import frames
from nperf.roles.lb_shared import Attachment


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--prefix", required=True)
    p.add_argument("--ring", type=int, required=True)
    p.add_argument("--lcore", type=int, required=True)
    p.add_argument("--send")
    p.add_argument("--expect", type=int, default=0)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--out", required=True)
    a = p.parse_args()

    args, _, _, _ = eal.build(f"--proc-type=secondary --file-prefix={a.prefix}", a.lcore, 0, "ring_worker")
    dpdk.eal_init(args)
    att = Attachment(a.ring, a.lcore)
    fns = dpdk.function_table()
    print("attached", att.mac.hex(), flush=True)
    sys.stdin.readline()

    sent = 0
    bufs = np.zeros(frames.BURST, np.int64)
    if a.send:
        data = np.load(a.send)
        sent = frames.inject(fns, att.pool.addr, att.tx.addr, data["frames"], data["lens"], 0, len(data["lens"]), bufs)
    got_frames = np.zeros((max(a.expect, 1) + 64, 2048), np.uint8)
    got_lens = np.zeros(got_frames.shape[0], np.int64)
    got = 0
    deadline = time.monotonic() + a.seconds
    while time.monotonic() < deadline and (a.expect == 0 or got < a.expect):
        n = frames.collect(fns, att.rx.addr, got_frames, got_lens, got, bufs)
        got += n
        if n == 0:
            time.sleep(0.001)
    att.release()
    np.savez(a.out, frames=got_frames[:got], lens=got_lens[:got], sent=np.int64(sent))
    print("done sent", sent, "got", got, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
