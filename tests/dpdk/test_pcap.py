"""`--pcap FILE --pcap-count N`: the first N frames in and out, readable by tcpdump, checksums right."""
import re
import subprocess

from tests.netns import Netns
from tests.server_setup import SERVER_IP, start_tap_server


def test_server_capture_of_a_curl_request_reads_back_in_tcpdump(session):
    ns = Netns("pcap")
    try:
        pcap = session.path("server.pcapng")
        for knob in ("default", "all"):                  # no IPv6 chatter on the TAP: the frames are the test's
            ns.run("sysctl", "-qw", f"net.ipv6.conf.{knob}.disable_ipv6=1")
        proc = start_tap_server(session, ns, "--pcap", pcap, "--pcap-count", "9")
        r = ns.run("curl", "-sS", "--max-time", "20", "-o", "/dev/null", f"http://{SERVER_IP}:8000/hello",
                   timeout=30, check=False)
        assert r.returncode == 0, r.stderr
        proc.stop()
        assert proc.wait_for(rf"wrote 9 frames to {re.escape(pcap)}", 10)
        out = subprocess.run(["tcpdump", "-r", pcap, "-nn", "-vv", "-e", "-tttt"], capture_output=True,
                             text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        packets = [line for line in lines if " > " in line and (" ethertype " in line)]
        assert len(packets) == 9, out.stdout
        tcp = out.stdout
        assert f"> {SERVER_IP}.8000: Flags [S]" in tcp                     # the kernel's SYN, in
        assert f"{SERVER_IP}.8000 > " in tcp and "Flags [S.]" in tcp        # our SYN-ACK, out
        assert "GET /hello HTTP/1.1" in subprocess.run(["tcpdump", "-r", pcap, "-nn", "-A"], capture_output=True,
                                                       text=True).stdout
        assert "HTTP/1.1 200 OK" in subprocess.run(["tcpdump", "-r", pcap, "-nn", "-A"], capture_output=True,
                                                   text=True).stdout
        sums = [line for line in lines if "Flags [" in line and "cksum" in line]        # TCP lines
        assert len(sums) >= 5 and all("(correct)" in line for line in sums), "\n".join(sums)
        assert "incorrect" not in tcp
    finally:
        session.close()
        ns.close()
