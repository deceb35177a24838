"""The VNET layout of synthetic VIMAGE kernels (``kerneldata.lay_out_vnets``).

First the writer alone, on a dictionary arena with hand-placed ``vnet_entry_`` variables
(the set bounds and every address below are worked out by hand from those), then a whole
amd64 dump read back with the test-local reader (``synth_minireader``) and pyelftools.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from synth_minireader import Minidump

from pykvm.synth import build_amd64
from pykvm.synth.cmodel import AMD64
from pykvm.synth.kerneldata import VNET_MAGIC_N, bss_variables, has_vimage, lay_out_vnets
from pykvm.synth.kerneltypes import kernel_types


class DictArena:
    """A bump allocator over a dict of written bytes."""

    def __init__(self, base: int) -> None:
        self.cursor = base
        self.mem: dict[int, int] = {}

    def alloc(self, size: int, align: int = 16) -> int:
        va = self.cursor + (-self.cursor % align)
        self.cursor = va + max(size, 1)
        return va

    def write(self, va: int, data: bytes) -> None:
        for k, b in enumerate(data):
            self.mem[va + k] = b

    def read(self, va: int, n: int) -> bytes:
        return bytes(self.mem.get(va + k, 0) for k in range(n))

    def u64(self, va: int) -> int:
        return int(struct.unpack("<Q", self.read(va, 8))[0])


def test_writer_hand_worked() -> None:
    lt = kernel_types(5, AMD64, era="14").truth()
    assert has_vimage(lt)
    # the machine lays extra .bss variables 8-byte aligned and contiguous
    names = [n for n, _ in bss_variables(lt, cp_time=False, existing=[])]
    assert names[-2:] == ["vnet_entry_synth_ifcnt", "vnet_entry_synth_table"]
    vars_at = {"vnet_entry_synth_ifcnt": 0xFFFFFFFF80801000,  # 4 bytes, padded to 8
               "vnet_entry_synth_table": 0xFFFFFFFF80801008,  # 32 bytes
               "vnet_head": 0xFFFFFFFF80802000}
    bss: dict[str, bytes] = {}
    arena = DictArena(0xFFFFFE0000100000)
    # two prisons already in the arena (their pr_vnet is what the writer fills in)
    psize = lt.structs["prison"].size
    prison0 = arena.alloc(psize, 64)
    jail = arena.alloc(psize, 64)
    assert (prison0, jail) == (0xFFFFFE0000100000, 0xFFFFFE0000100000 + -(-psize // 64) * 64)
    symbols: dict[str, int] = {}
    v = lay_out_vnets(lt, arena, seed=5, var_address=vars_at.__getitem__,
                      set_var=bss.__setitem__, prison0=prison0, jail_prison=jail, jail_id=3,
                      dumptid=100123, symbols=symbols)
    assert v is not None
    assert symbols == {"__start_set_vnet": 0xFFFFFFFF80801000,
                       "__stop_set_vnet": 0xFFFFFFFF80801028}
    assert (v.start, v.stop) == (0xFFFFFFFF80801000, 0xFFFFFFFF80801028)
    # allocation order: vnet0's struct, the jail's struct, vnet0's copy, the jail's copy
    vsize = -(-lt.structs["vnet"].size // 64) * 64
    after_prisons = jail + -(-psize // 64) * 64
    vnet0, vnet1 = after_prisons, after_prisons + vsize
    copy0 = vnet1 + vsize
    copy1 = copy0 + 64  # the 0x28-byte copy rounded up to the 64-byte alignment
    # seed 5, era 14: struct prison is 2192 bytes (0x8c0 once 64-aligned), struct vnet 128
    assert (psize, lt.structs["vnet"].size) == (2192, 128)
    assert (vnet0, vnet1) == (0xFFFFFE0000101180, 0xFFFFFE0000101200)
    assert (copy0, copy1) == (0xFFFFFE0000101280, 0xFFFFFE00001012C0)
    # data_base = copy - __start_set_vnet = copy + 2**64 - 0xffffffff80801000 (+ 0x7f7ff000)
    assert v.vnet(vnet0).data_base == 0xFFFFFE007F900280
    assert v.vnet(vnet1).data_base == 0xFFFFFE007F9002C0
    assert v.vnet0 == vnet0 == v.selected
    assert [i.addr for i in v.vnets] == [vnet1, vnet0]  # LIST_INSERT_HEAD: newest first
    assert [i.data_mem for i in v.vnets] == [copy1, copy0]
    assert [i.data_base for i in v.vnets] == [(copy1 - v.start) % (1 << 64),
                                              (copy0 - v.start) % (1 << 64)]
    # vnet_head -> jail vnet -> vnet0 -> NULL; le_prev points back at the previous le_next
    off = {m: lt.structs["vnet"].member(m).offset for m in (
        "vnet_le.le_next", "vnet_le.le_prev", "vnet_magic_n", "vnet_data_mem",
        "vnet_data_base")}
    assert bss["vnet_head"] == vnet1.to_bytes(8, "little")
    assert arena.u64(vnet1 + off["vnet_le.le_next"]) == vnet0
    assert arena.u64(vnet1 + off["vnet_le.le_prev"]) == vars_at["vnet_head"]
    assert arena.u64(vnet0 + off["vnet_le.le_next"]) == 0
    assert arena.u64(vnet0 + off["vnet_le.le_prev"]) == vnet1 + off["vnet_le.le_next"]
    for inst in v.vnets:
        assert arena.read(inst.addr + off["vnet_magic_n"], 4) == b"\x29\x8f\x0d\x3e"
        assert arena.u64(inst.addr + off["vnet_data_mem"]) == inst.data_mem
        assert arena.u64(inst.addr + off["vnet_data_base"]) == inst.data_base
        # the copy: ifcnt at +0 (4 bytes, then 4 bytes of padding), the table at +8
        assert arena.read(inst.data_mem, 4) == inst.data["vnet_entry_synth_ifcnt"]
        assert arena.read(inst.data_mem + 4, 4) == bytes(4)
        assert arena.read(inst.data_mem + 8, 32) == inst.data["vnet_entry_synth_table"]
    # prisons point at their stacks
    pr_vnet = lt.structs["prison"].member("pr_vnet").offset
    assert arena.u64(prison0 + pr_vnet) == vnet0
    assert arena.u64(jail + pr_vnet) == vnet1
    assert (v.vnet(vnet0).jids, v.vnet(vnet1).jids) == ((0,), (3,))
    # the template in .bss: bytes 0xa0, 0xa1, ...
    assert bss["vnet_entry_synth_ifcnt"] == bytes([0xA0, 0xA1, 0xA2, 0xA3])
    assert bss["vnet_entry_synth_table"] == bytes(range(0xA0, 0xC0))
    assert v.template == {k: bss[k] for k in v.template}
    # values differ between the stacks and from the template
    assert v.vnets[0].data != v.vnets[1].data
    assert VNET_MAGIC_N == 0x3E0D8F29


def test_no_vimage_before_era_12() -> None:
    for era in ("10", "11"):
        lt = kernel_types(5, AMD64, era=era).truth()
        assert not has_vimage(lt) and "vnet_head" not in lt.variables
        names = [n for n, _ in bss_variables(lt, cp_time=False, existing=[])]
        assert not any(n.startswith("vnet_entry_") for n in names)
        arena = DictArena(0x1000)
        symbols: dict[str, int] = {}
        got = lay_out_vnets(lt, arena, seed=5, var_address=lambda n: 0, set_var=lambda n, b: None,
                            prison0=0x1000, jail_prison=0x2000, jail_id=2, dumptid=1,
                            symbols=symbols)
        assert got is None and symbols == {} and arena.mem == {}


@pytest.mark.parametrize("era", ["12", "15"])
def test_dump_carries_vnets(tmp_path: Path, era: str) -> None:
    dump = build_amd64(tmp_path, 9, "minidump-v3", small_kva=True, types="ctf-v3", era=era)
    kd = dump.truth.kernel_data
    lt = dump.truth.type_layout
    assert kd is not None and lt is not None and kd.vnet is not None
    v = kd.vnet
    with dump.kernel.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        syms = {s.name: s for s in symtab.iter_symbols() if s.name}
        bss_index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == ".bss")
        bounds = {n: syms[n] for n in ("__start_set_vnet", "__stop_set_vnet")}
        for s in bounds.values():
            assert s["st_info"]["type"] == "STT_NOTYPE" and s["st_shndx"] == bss_index
        assert bounds["__start_set_vnet"]["st_value"] == v.start
        assert bounds["__stop_set_vnet"]["st_value"] == v.stop
        for sym, (addr, size) in v.entries.items():
            assert syms[sym]["st_value"] == addr and syms[sym]["st_size"] == size
            assert v.start <= addr < v.stop
        vals = {n: syms[n]["st_value"] for n in ("vnet_head", "proc0")}
    mem = Minidump(dump.core.read_bytes())

    def u64(va: int) -> int:
        out = mem.read(va, 8)
        assert out is not None
        return int(struct.unpack("<Q", out)[0])

    def off(s: str, m: str) -> int:
        return lt.structs[s].member(m).offset

    # walk vnet_head
    seen = []
    p = u64(vals["vnet_head"])
    while p and len(seen) < 10:
        seen.append(p)
        assert mem.read(p + off("vnet", "vnet_magic_n"), 4) == b"\x29\x8f\x0d\x3e"
        base = u64(p + off("vnet", "vnet_data_base"))
        for sym, (addr, size) in v.entries.items():
            assert mem.read((addr + base) % (1 << 64), size) == v.vnet(p).data[sym]
        p = u64(p + off("vnet", "vnet_le.le_next"))
    assert seen == [i.addr for i in v.vnets]
    # proc0 -> ucred -> prison0 -> vnet0, what libkvm follows on a crash dump
    cred = u64(vals["proc0"] + off("proc", "p_ucred"))
    prison = u64(cred + off("ucred", "cr_prison"))
    assert prison == v.prison0
    assert u64(prison + off("prison", "pr_vnet")) == v.vnet0 == v.selected
    assert u64(v.jail_prison + off("prison", "pr_vnet")) == v.vnets[0].addr
    # the template in .bss keeps its own bytes
    for sym, (addr, size) in v.entries.items():
        assert mem.read(addr, size) == v.template[sym]
