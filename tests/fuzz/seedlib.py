"""What seeds.py, seeds_agent.py and seeds_skyvmm_dev.py share: protobuf fields
encoded by hand from proto/skyroot.proto, the link's length-prefixed frames,
a real P-256 certificate request or certificate made with openssl, and the
writing of one seed file under tests/fuzz/corpus/TARGET/.  Python stdlib
only."""
import os
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    """Field NUM: a varint for an int, else length-delimited (str as UTF-8)."""
    if isinstance(value, int):
        return varint(num << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(num << 3 | 2) + varint(len(value)) + value


def frame(env):
    """An encoded Envelope as the link carries it: u32 length, then it."""
    return struct.pack(">I", len(env)) + env


def envelope(req, num, body):
    """The frame of an Envelope with request id REQ (left out when 0) and
    BODY in its field NUM."""
    return frame((field(1, req) if req else b"") + field(num, body))


def p256_der(subject, *how):
    """A fresh P-256 key's certificate request (HOW "-new") or self-signed
    certificate (HOW "-x509", "-days", N) for SUBJECT, in DER: random on
    every run by design."""
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "out.der")
        subprocess.run(["openssl", "req", *how, "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-keyout", os.path.join(d, "k.pem"), "-subj", subject, "-outform", "DER", "-out", out],
                       check=True, capture_output=True)
        with open(out, "rb") as f:
            return f.read()


def write(target, name, data):
    """Seed NAME of fuzz target TARGET (str written as UTF-8)."""
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
