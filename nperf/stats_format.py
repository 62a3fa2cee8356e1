"""Number formats of the per-second statistics lines (spec section 4)."""


def count(n) -> str:
    """1234567 -> '1,234,567'."""
    return f"{int(n):,}"


def mbps(nbytes) -> str:
    return f"{int(nbytes) * 8 / 1e6:.1f} Mbps"


def rate_line(packets, nbytes) -> str:
    """Packets and bits of one second: '1,234 pkt/s 12.3 Mbps'."""
    return f"{count(packets)} pkt/s {mbps(nbytes)}"
