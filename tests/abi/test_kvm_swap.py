"""``struct kvm_swap`` in pykvm.abi (kernel-data.md 4.1: 52 bytes everywhere)."""

from __future__ import annotations

import struct

import pytest

from pykvm.abi import ABIS, layout
from pykvm.abi import kvm_swap as ks
from pykvm.abi import nlist as nl
from pykvm.kernel.swap import KvmSwap

# kernel-data.md 4.1, by hand
HAND = {"ksw_devname": (0, 32), "ksw_used": (32, 4), "ksw_total": (36, 4),
        "ksw_flags": (40, 4), "ksw_reserved1": (44, 4), "ksw_reserved2": (48, 4)}


@pytest.mark.parametrize("name", sorted(ABIS))
def test_layout(name: str) -> None:
    lay = layout(ks.KVM_SWAP, ABIS[name])
    assert lay.offsets() == HAND
    assert lay.size == 52 == ks.KVM_SWAP_SIZE


def test_bytes() -> None:
    be = ks.pack(b"ada0p3", 10, 20, -1, ABIS["powerpc64"])
    assert be == b"ada0p3".ljust(32, b"\0") + bytes.fromhex("0000000a" "00000014" "ffffffff") \
        + bytes(8)
    le = ks.pack(b"x" * 40, 0x1_0000_0001, 2, 2, ABIS["amd64"])
    assert le == b"x" * 31 + b"\0" + struct.pack("<IIiII", 1, 2, 2, 0, 0)
    assert ks.pack(b"md0", 1, 2, 0, True) == ks.pack(b"md0", 1, 2, 0, ABIS["armeb"])


def test_swap_module_uses_it() -> None:
    r = KvmSwap("/dev/ada0p3", 100, 2048, 2)
    assert r.pack("big") == ks.pack(b"/dev/ada0p3", 100, 2048, 2, True)
    assert r.pack("little") == b"/dev/ada0p3".ljust(32, b"\0") + struct.pack(
        "<IIiII", 100, 2048, 2, 0, 0)
    assert KvmSwap("[NFS swap]", 0, 0, 0).pack()[:11] == b"[NFS swap]\0"


def test_nlist_records() -> None:
    # api.md 1.3-1.5 (LP64) and the i386 rules, by hand
    assert layout(nl.NLIST, ABIS["amd64"]).offsets() == {
        "n_name": (0, 8), "n_type": (8, 1), "n_other": (9, 1), "n_desc": (10, 2),
        "n_value": (16, 8)}
    assert layout(nl.KVM_NLIST, ABIS["i386"]).offsets() == {
        "n_name": (0, 4), "n_type": (4, 1), "n_value": (8, 8)}
    assert layout(nl.KVM_PAGE, ABIS["i386"]).size == 44
    assert layout(nl.KVM_PAGE, ABIS["arm"]).size == 56
    assert layout(nl.KVM_PAGE, ABIS["amd64"]).offsets()["kp_offset"] == (40, 8)
