"""The powerpc64 targets and the part of the minidump machine both MMUs share.

Constants from sys/powerpc/include/vmparam.h (FreeBSD 13 and later): the direct map
``DMAP_BASE_ADDRESS`` 0xc000000000000000 .. ``DMAP_MAX_ADDRESS`` 0xc007ffffffffffff
(inclusive), kernel VA ``VM_MIN_KERNEL_ADDRESS`` 0xc008000000000000 ..
``VM_MAX_KERNEL_ADDRESS`` = ``VM_MAX_SAFE_KERNEL_ADDRESS`` 0xc0080007ffffffff, and
``KERNBASE`` 0x00100100.  FreeBSD 12 and earlier put kernel VA at 0xe000000000000000 ..
0xe0000007ffffffff (used by the ELF formats, see :mod:`pykvm.synth.arch_powerpc.virtcore`).

The kernel is a position-independent ELF64 (``ET_DYN``, ``EM_PPC64``) linked with
``.text`` at ``kernbase`` 0x100100 (sys/conf/ldscript.powerpc64: ``.kboot`` at
``kernbase - 0x100``).  The synthetic image starts at link address 0x100000 with the ELF
headers; the loader puts that first byte at physical ``kernphys`` and the kernel runs
from the direct map, so the link address ``a`` runs at ``a + startkernel - 0x100100``
with ``startkernel`` (``__startkernel``) = ``DMAP_BASE_ADDRESS + kernphys + 0x100``.
An unrelocated kernel has ``kernphys`` = 0x100000 (``startkernel`` 0xc000000000100100);
a relocated one sits elsewhere.

The shared machine (:class:`Ppc64Machine`): RAM from physical 0 (``dump_avail`` range 0,
4-6 MiB, holding the exception vectors and, unrelocated, the kernel), two ranges of 2-4
MiB above 16 MiB after holes of 1-48 MiB (a relocated kernel sits in the first), and a
"high" range of 1-2 MiB ending a 16 MiB-aligned chunk of a physical GiB at 2-5 GiB (the
rest of that chunk and GiB is a hole; ``vm_page_array`` lives at its end).  At
``VM_MIN_KERNEL_ADDRESS`` (``moea64_late_bootstrap`` / ``mmu_radix_late_bootstrap``
order): an unmapped guard page, thread0's stack, the message buffer, the dynamic per-CPU
area, then ``crashdumpmap`` (``MAXDUMPPGS`` unmapped pages).  Pages the kernel adds with
``dump_add_page`` (UMA small allocations, reachable only through the direct map) are the
machine's ``extras``.

With kernel data (``types``) the kernel has the variables of :mod:`pykvm.synth.kerneldata`
in ``.bss`` and the subclass maps a kernel-data arena of 4 KiB pages in kernel VA (after
every random draw of the default machine) through :meth:`Ppc64Machine.add_kernel_data`;
being mapped kernel memory, the minidump dumps it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from .. import elfwriter as ew
from .._prng import Rng
from ..arch_powerpc.kdata import build_kernel_data, kdata_bss
from ..cmodel import LayoutTruth
from ..kernel import SymbolEntry, SynthKernel
from ..kerneldata import KernelDataTruth
from ..machine import Machine, boot_messages, spread_ranges
from ..spec import KernelSpec

PAGE_SIZE = 4096
PAGE_SHIFT = 12
MIB = 1 << 20
GIB = 1 << 30
KERNBASE = 0x00100100
#: link address of the image's first byte (.kboot / the ELF headers)
IMAGE_VA = 0x100000
DMAP_BASE_ADDRESS = 0xC000000000000000
DMAP_MAX_ADDRESS = 0xC007FFFFFFFFFFFF
VM_MIN_KERNEL_ADDRESS = 0xC008000000000000
VM_MAX_KERNEL_ADDRESS = 0xC0080007FFFFFFFF
#: FreeBSD 12 and earlier
OLD_VM_MIN_KERNEL_ADDRESS = 0xE000000000000000
OLD_VM_MAX_KERNEL_ADDRESS = 0xE0000007FFFFFFFF
SEGMENT_LENGTH = 1 << 28
LARGE_PAGE = 1 << 24
KSTACK_PAGES = 4
#: MAXDUMPPGS (DFLTPHYS / PAGE_SIZE): the unmapped crashdumpmap window
MAXDUMPPGS = 16
#: exception vectors: EXC_RSVD .. EXC_LAST (sys/powerpc/include/trap.h)
EXC_LAST = 0x2F00
#: sizeof(struct vm_page) on powerpc64
VM_PAGE_SIZEOF = 104


def make_spec(byteorder: str, *, old: bool = False) -> KernelSpec:
    """The powerpc64 kernel of one byte order.

    ``old`` selects the FreeBSD 12 kernel the ELF formats model (ELFv1 ``e_flags`` 1 for
    big-endian; no minidump variables); otherwise FreeBSD 13+ (ELFv2, ``e_flags`` 2).
    """
    big = byteorder == "big"
    bss_vars: tuple[tuple[str, int], ...]
    if old:
        data_vars: tuple[tuple[str, int], ...] = ()
        bss_vars = (("msgbuf_phys", 8), ("virtual_avail", 8), ("virtual_end", 8))
    else:
        data_vars = (("hw_direct_map", 4), ("__startkernel", 8), ("__endkernel", 8))
        bss_vars = (
            ("msgbuf_phys", 8),
            ("moea64_pteg_count", 8),
            ("vm_page_array", 8),
            ("vm_page_array_size", 8),
            ("virtual_avail", 8),
            ("virtual_end", 8),
        )
    return KernelSpec(
        arch="powerpc64",
        elfclass=ew.ELFCLASS64,
        data=ew.ELFDATA2MSB if big else ew.ELFDATA2LSB,
        e_machine=ew.EM_PPC64,
        e_type=ew.ET_DYN,
        e_flags=1 if (old and big) else 2,
        kernbase=KERNBASE,
        load_offset=IMAGE_VA - KERNBASE,
        text_offset=KERNBASE - IMAGE_VA,
        link_paddr=IMAGE_VA,
        machine="powerpc",
        machine_arch="powerpc64" if big else "powerpc64le",
        data_vars=data_vars,
        bss_vars=bss_vars,
        # mflr r0; std r0,16(r1) in the kernel's byte order
        func_prologue=(b"\x7c\x08\x02\xa6" if big else b"\xa6\x02\x08\x7c"),
    )


#: the default target: big-endian FreeBSD 13+ kernel
SPEC = make_spec("big")


def to_signed64(value: int) -> int:
    """``value`` (mod 2**64) as a signed 64-bit integer."""
    value &= (1 << 64) - 1
    return value - (1 << 64) if value >> 63 else value


class Ppc64Machine(Machine, ABC):
    """RAM, the kernel image in the direct map, boot KVA pages, msgbuf and extras.

    Subclasses (:class:`~.hpt.HptMachine`, :class:`~.radix.RadixMachine`) supply the
    page tables through :meth:`map_kva` and call :meth:`complete`.
    """

    def __init__(
        self,
        spec: KernelSpec,
        seed: int,
        *,
        relocated: bool | None = None,
        extra_symbols: int = 0,
        types: LayoutTruth | None = None,
        cp_time_symbol: bool = False,
        ctf_section: Callable[[Sequence[SymbolEntry]], bytes] | None = None,
    ) -> None:
        """Lay out RAM and the kernel image of machine ``seed``.

        ``types`` (the kernel's type layout) gives the kernel the kernel-data variables
        (``cp_time_symbol``: also ``cp_time``) and makes :meth:`add_kernel_data` lay the
        data out; ``ctf_section`` gives the kernel ``.SUNW_ctf``.
        """
        # page-table entries of both MMUs are big-endian in memory (htobe64)
        super().__init__(seed, Rng(seed, "powerpc64"), byteorder="big")
        self.spec = spec
        rng = self._rng
        k = self.kernel = SynthKernel(
            spec, seed, extra_symbols, extra_bss=kdata_bss(spec, types, cp_time_symbol)
        )
        k.ctf_section = ctf_section
        self._types = types
        self._cp_time_symbol = cp_time_symbol
        self.kdata: KernelDataTruth | None = None
        self.kdata_va = 0
        self.kdata_pages = 0
        seg0 = (0, 4 * MIB + rng.below(2) * MIB + rng.between(1, 255) * PAGE_SIZE)
        mids = spread_ranges(rng, LARGE_PAGE, 2, size_mib=(2, 4))
        gib = (2 + rng.below(3)) * GIB
        self.high_chunk = gib + rng.between(1, 60) * LARGE_PAGE
        hend = self.high_chunk + LARGE_PAGE
        high = (hend - rng.between(1, 2) * MIB - rng.between(1, 255) * PAGE_SIZE, hend)
        self.high_gib = gib
        self.set_segments([seg0, *mids, high])
        self.reserve(0, EXC_LAST + PAGE_SIZE)
        self.reserve(*high)
        if relocated is None:
            relocated = rng.chance(1, 2)
        self.relocated = relocated
        if relocated:
            s, _ = mids[0]
            self.kernphys = ((s + 0xFFFF) & ~0xFFFF) + 0x10000 * rng.between(1, 4)
        else:
            self.kernphys = IMAGE_VA
        self.reserve(self.kernphys, self.kernphys + k.image_len)
        #: __startkernel, __endkernel: run-time addresses of kernbase and _end
        self.disp = DMAP_BASE_ADDRESS + self.kernphys - IMAGE_VA
        self.startkernel = KERNBASE + self.disp
        self.endkernel = self.link_end + self.disp
        self.kva_next = VM_MIN_KERNEL_ADDRESS
        self.kernel_vm_end = VM_MIN_KERNEL_ADDRESS

    # ------------------------------------------------------------------ kernel image
    @property
    def link_etext(self) -> int:
        """Link address of ``_etext``."""
        k = self.kernel
        return k.image_va + k.text_off + k.text_size

    @property
    def link_end(self) -> int:
        """Link address of ``_end``."""
        k = self.kernel
        return k.image_va + k.bss_off + k.bss_size

    @property
    def page_array_bytes(self) -> int:
        """``round_page(pages * sizeof(struct vm_page))`` (104 bytes on powerpc64)."""
        return -(-(self.physmem // PAGE_SIZE) * VM_PAGE_SIZEOF // PAGE_SIZE) * PAGE_SIZE

    @property
    def kerndisp(self) -> int:
        """``kvm_kerndisp``: ``startkernel - 0x100100`` as a signed value."""
        return to_signed64(self.startkernel - KERNBASE)

    def image_pages(self) -> range:
        """Physical pages of the kernel image, ``kernphys`` to ``round_page(_end)``."""
        end = self.kernphys + (self.link_end - IMAGE_VA)
        return range(self.kernphys, -(-end // PAGE_SIZE) * PAGE_SIZE, PAGE_SIZE)

    # ------------------------------------------------------------------ boot KVA
    @abstractmethod
    def kenter(self, va: int, pa: int) -> None:
        """``pmap_kenter``: one wired 4 KiB kernel mapping (the MMU subclass encodes it)."""

    @abstractmethod
    def map_kva(self, va: int, pa: int, *, write: bool = True, exec_: bool = False) -> None:
        """``pmap_enter`` of a kernel page with the given protection (MMU subclass)."""

    def boot_kva(self) -> None:
        """The late-bootstrap KVA: guard page, kstack0, msgbuf, dpcpu, crashdumpmap."""
        rng = self._rng
        k = self.kernel
        self.guard_va = VM_MIN_KERNEL_ADDRESS
        va = VM_MIN_KERNEL_ADDRESS + PAGE_SIZE
        self.kstack_va = va
        pa = self.alloc(KSTACK_PAGES)
        for i in range(KSTACK_PAGES):
            self.kenter(va, pa + i * PAGE_SIZE)
            va += PAGE_SIZE
        self.msgbuf = boot_messages(
            rng,
            k,
            physmem=self.physmem,
            avail=self.physmem - 4 * MIB,
            cpu="IBM POWER9 revision 2.2, 2200.00 MHz",
            timer='Event timer "decrementer" frequency 512000000 Hz quality 0',
        )
        npages = -(-len(self.msgbuf) // PAGE_SIZE)
        self.msgbuf_pa = self.alloc(npages)
        self.place(self.msgbuf_pa, self.msgbuf)
        self.msgbuf_va = va
        for i in range(npages):
            self.kenter(va, self.msgbuf_pa + i * PAGE_SIZE)
            va += PAGE_SIZE
        self.dpcpu_va = va
        ndpcpu = rng.between(2, 4)
        pa = self.alloc(ndpcpu)
        for i in range(ndpcpu):
            self.kenter(va, pa + i * PAGE_SIZE)
            va += PAGE_SIZE
        self.crashdumpmap = va
        self.kva_next = va + MAXDUMPPGS * PAGE_SIZE

    def add_kernel_data(self, base: int) -> bool:
        """With ``types``: map the kernel-data arena from ``base`` with :meth:`map_kva`
        (writable, no-execute), lay the data out and set ``kdata``; return True.
        Without ``types`` do nothing and return False."""
        if self._types is None:
            return False

        def map_page(va: int) -> int:
            pa = self.alloc()
            self.map_kva(va, pa, write=True, exec_=False)
            return pa

        self.kdata, vas = build_kernel_data(
            self.kernel,
            self._types,
            seed=self.seed,
            base=base,
            page_size=PAGE_SIZE,
            map_page=map_page,
            place=self.place,
            msgbuf_ring_va=self.msgbuf_va,
            msgbuf=self.msgbuf,
            cp_time_symbol=self._cp_time_symbol,
        )
        self.kdata_va = base
        self.kdata_pages = len(vas)
        return True

    def add_extras(self) -> None:
        """``dump_add_page`` pages: UMA small allocations reached through the direct map."""
        for _ in range(self._rng.between(6, 14)):
            self.extras.add(self.alloc() >> PAGE_SHIFT)

    def fill_kernel(
        self, *, hw_direct_map: int, pteg_count: int, page_array: int, page_array_size: int
    ) -> None:
        """Give the kernel variables their values, freeze the kernel, place its image."""
        k = self.kernel
        k.set_int("hw_direct_map", hw_direct_map, signed=True)
        k.set_int("__startkernel", self.startkernel)
        k.set_int("__endkernel", self.endkernel)
        k.set_int("msgbuf_phys", self.msgbuf_pa)
        k.set_int("moea64_pteg_count", pteg_count)
        k.set_int("vm_page_array", page_array)
        k.set_int("vm_page_array_size", page_array_size)
        k.set_int("virtual_avail", self.kernel_vm_end)
        k.set_int("virtual_end", VM_MAX_KERNEL_ADDRESS)
        k.set_int("kernel_vm_end", self.kernel_vm_end)
        k.set_int("physmem", self.physmem // PAGE_SIZE, signed=True)
        k.set_dump_avail(self.segments)
        k.finalize()
        self.place(self.kernphys, k.memory_image())

    def ram_pages_in(self, start: int, end: int) -> list[int]:
        """Physical page addresses of dumpable RAM in ``[start, end)``."""
        return [pfn << PAGE_SHIFT for pfn in self.ram_pfns_in(start, end)]

    def undumped_ram(self, dumped: set[int]) -> int:
        """A RAM page in range 0's neighbourhood that is not in ``dumped`` (pfns)."""
        for s, e in reversed(self.segments[:-1]):
            for pa in range(e - PAGE_SIZE, s, -PAGE_SIZE):
                if pa >> PAGE_SHIFT not in dumped:
                    return pa
        raise AssertionError("every RAM page is dumped")


__all__ = [
    "DMAP_BASE_ADDRESS",
    "DMAP_MAX_ADDRESS",
    "GIB",
    "IMAGE_VA",
    "KERNBASE",
    "LARGE_PAGE",
    "MIB",
    "PAGE_SIZE",
    "SPEC",
    "VM_MAX_KERNEL_ADDRESS",
    "VM_MIN_KERNEL_ADDRESS",
    "Ppc64Machine",
    "make_spec",
    "to_signed64",
]
