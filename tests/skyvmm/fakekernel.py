#!/usr/bin/env python3
"""A tiny stand-in "kernel" for skyvmm's host tests: a bzImage setup header
(boot protocol 2.15, relocatable, XLF_KERNEL_64) in front of a few bytes of
x86-64 code at the 64-bit entry (load address + 0x200) that

  - checks that RSI points at the zero page (its "HdrS" at +0x202) and that
    the command line pointer in it leads to the expected first word,
  - writes a line on the 16550 at 0x3f8 (THR), waiting for LSR.THRE,
  - then powers off (SLP_TYP 5 | SLP_EN to PM1 control at 0x604), resets
    (0xFE to port 0x64), spins, or echoes console input (RBR, waiting for
    LSR.DR) until a newline and powers off, as asked.

Not a Linux kernel: it proves skyvmm's boot path (header checks, loading,
the 64-bit entry with its GDT, page tables and RSI), the UART and the power
paths on a host whose /dev/kvm cannot boot a stock kernel.

usage: fakekernel.py OUT {poweroff|reset|spin|echo} MESSAGE [--bad MAGIC|PROTO|NO64|RELOC]
(as a module: image(message, end, bad=None, flood=0); flood N writes N
bytes of ((i & 0x3f) + 0x30) for i = N .. 1 before the message, each after
waiting for THRE: the back-pressure test)
"""
import struct
import sys


def code(message, end, flood=0):
    c = bytearray()
    # cmp dword [rsi+0x202], "HdrS"; jne -> print "BADZP" instead
    msg_ok = message.encode() + b"\n"
    msg_bad = b"BAD ZERO PAGE\n"

    def put_string(s):
        out = bytearray()
        for ch in s:
            # wait for THRE: mov dx,0x3fd; in al,dx; test al,0x20; jz back
            out += b"\x66\xba\xfd\x03"      # mov dx, 0x3fd
            out += b"\xec"                  # in al, dx
            out += b"\xa8\x20"              # test al, 0x20
            out += b"\x74\xfb"              # jz -5 (back to in)
            out += b"\x66\xba\xf8\x03"      # mov dx, 0x3f8
            out += b"\xb0" + bytes([ch])    # mov al, ch
            out += b"\xee"                  # out dx, al
        return out

    ok = bytearray()
    if flood:
        # flood bytes of ((ecx & 0x3f) + 0x30) for ecx = flood .. 1, each
        # after waiting for THRE, then the message
        ok += b"\xb9" + struct.pack("<I", flood)      # mov ecx, flood
        ok += b"\x66\xba\xfd\x03\xec\xa8\x20\x74\xfb"  # wait for THRE
        ok += b"\x66\xba\xf8\x03"                   # mov dx, 0x3f8
        ok += b"\x88\xc8\x24\x3f\x04\x30\xee"       # mov al, cl; and al, 0x3f; add al, 0x30; out
        ok += b"\xff\xc9\x75\xe8"                   # dec ecx; jnz back to the wait
    ok += put_string(msg_ok)
    bad = put_string(msg_bad)
    if end == "echo":
        # echo console input back until a newline, then power off
        tail = (b"\x66\xba\xfd\x03\xec\xa8\x01\x74\xfb"   # wait for LSR.DR
                b"\x66\xba\xf8\x03\xec\x88\xc1"           # in al from RBR; mov cl, al
                b"\x66\xba\xfd\x03\xec\xa8\x20\x74\xfb"   # wait for THRE
                b"\x66\xba\xf8\x03\x88\xc8\xee"           # mov al, cl; out to THR
                b"\x3c\x0a\x75\xdc")                        # cmp al, 10; jne back to the top
        tail += b"\x66\xba\x04\x06" + b"\x66\xb8\x00\x34" + b"\x66\xef"
    elif end == "poweroff":
        tail = b"\x66\xba\x04\x06" + b"\x66\xb8\x00\x34" + b"\x66\xef"  # out 0x604, 0x3400
    elif end == "reset":
        tail = b"\xb0\xfe\xe6\x64"  # out 0x64, 0xfe
    else:
        tail = b""
    tail += b"\xf4\xeb\xfd"  # hlt; jmp back to hlt
    # zero page check: cmp dword [rsi+0x202], imm32
    c += b"\x81\xbe\x02\x02\x00\x00" + b"HdrS"
    c += b"\x0f\x85" + struct.pack("<i", len(ok) + len(tail))  # jne bad
    c += ok + tail + bad + tail
    return bytes(c)


def image(message, end, bad=None, flood=0):
    setup_sects = 1
    hdr = bytearray(512 * (setup_sects + 1))
    hdr[0x1f1] = setup_sects
    struct.pack_into("<H", hdr, 0x1fe, 0xAA55)
    hdr[0x200] = 0xEB
    hdr[0x201] = 0x6a  # header ends at 0x26c
    hdr[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", hdr, 0x206, 0x020F)
    hdr[0x211] = 0x01  # LOADED_HIGH
    struct.pack_into("<I", hdr, 0x214, 0x100000)
    struct.pack_into("<I", hdr, 0x22C, 0x7FFFFFFF)  # initrd_addr_max
    struct.pack_into("<I", hdr, 0x230, 0x200000)  # kernel_alignment
    hdr[0x234] = 1  # relocatable
    struct.pack_into("<H", hdr, 0x236, 0x3)  # XLF_KERNEL_64 | above 4G
    struct.pack_into("<I", hdr, 0x238, 2047)  # cmdline_size
    struct.pack_into("<Q", hdr, 0x258, 0x1000000)  # pref_address
    struct.pack_into("<I", hdr, 0x260, 0x100000)  # init_size
    if bad == "MAGIC":
        hdr[0x202:0x206] = b"HdrX"
    elif bad == "PROTO":
        struct.pack_into("<H", hdr, 0x206, 0x0206)
    elif bad == "NO64":
        struct.pack_into("<H", hdr, 0x236, 0)
    elif bad == "RELOC":
        hdr[0x234] = 0
    kernel = bytearray(0x200) + code(message, end, flood)
    kernel += bytes(4096 - len(kernel) % 4096)
    return bytes(hdr) + bytes(kernel)


def main():
    out, end, message = sys.argv[1:4]
    bad = sys.argv[5] if len(sys.argv) > 5 and sys.argv[4] == "--bad" else None
    with open(out, "wb") as f:
        f.write(image(message, end, bad))


if __name__ == "__main__":
    main()
