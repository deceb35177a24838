"""Constants as libkvm and FreeBSD's headers define them (never the host's values).

Mirrors: lib/libkvm/kvm.h, sys/sys/nlist_aout.h, sys/vm/vm.h, include/paths.h,
sys/sys/elf_common.h, sys/net/vnet.h, sys/sys/pcpu.h.
"""

from __future__ import annotations

# Open flags as FreeBSD numbers them (sys/sys/fcntl.h); libkvm accepts only 0 and 2.
O_RDONLY = 0
O_WRONLY = 1
O_RDWR = 2

# Limits (api.md 1.8)
POSIX2_LINE_MAX = 2048
MAXPATHLEN = 1024

# Paths (include/paths.h)
PATH_MEM = "/dev/mem"
PATH_KMEM = "/dev/kmem"
PATH_DEVNULL = "/dev/null"
PATH_FWMEM = "/dev/fwmem"
PATH_DEVVMM = "/dev/vmm/"
DEFAULT_BOOTFILE = "/boot/kernel/kernel"

# kvm.h
VRS_SYM = "_version"
VRS_KEY = "VERSION"
SWIF_DEV_PREFIX = 0x0002
LIBKVM_WALK_PAGES_VERSION = 2

# a.out nlist types (sys/sys/nlist_aout.h)
N_UNDF = 0x00
N_EXT = 0x01
N_ABS = 0x02
N_TEXT = 0x04
N_DATA = 0x06
N_BSS = 0x08
N_INDR = 0x0A
N_SIZE = 0x0C
N_COMM = 0x12
N_SETA = 0x14
N_SETT = 0x16
N_SETD = 0x18
N_SETB = 0x1A
N_SETV = 0x1C
N_FN = 0x1E
N_WARN = 0x1E
N_TYPE = 0x1E
N_STAB = 0xE0

# Page protections (sys/vm/vm.h)
VM_PROT_NONE = 0x00
VM_PROT_READ = 0x01
VM_PROT_WRITE = 0x02
VM_PROT_EXECUTE = 0x04

# Symbol-set prefixes (sys/net/vnet.h, sys/sys/pcpu.h)
VNET_SYMPREFIX = "vnet_entry_"
VNET_SETNAME = "set_vnet"
VNET_MAGIC_N = 0x3E0D8F29
DPCPU_SYMPREFIX = "pcpu_entry_"
DPCPU_SETNAME = "set_pcpu"

# ELF (sys/sys/elf_common.h)
ELFCLASS32 = 1
ELFCLASS64 = 2
ELFDATA2LSB = 1
ELFDATA2MSB = 2
EV_CURRENT = 1
ET_EXEC = 2
ET_DYN = 3
ET_CORE = 4
PT_LOAD = 1
PT_DUMP_DELTA = 0x6FB5D000
ELFOSABI_FREEBSD = 9
ELFOSABI_STANDALONE = 255
SHN_UNDEF = 0
SHN_LORESERVE = 0xFF00
SHN_ABS = 0xFFF1
SHN_COMMON = 0xFFF2
SHN_XINDEX = 0xFFFF
SHT_PROGBITS = 1
SHT_SYMTAB = 2
SHT_STRTAB = 3
SHT_NOBITS = 8
SHT_DYNSYM = 11
SHF_WRITE = 0x1
STB_LOCAL = 0
STB_GLOBAL = 1
STB_WEAK = 2
STT_FILE = 4
EF_MIPS_ABI2 = 0x20

EM_386 = 3
EM_MIPS = 8
EM_PPC = 20
EM_PPC64 = 21
EM_ARM = 40
EM_X86_64 = 62
EM_AARCH64 = 183
EM_RISCV = 243

MINIDUMP_PREFIX = b"minidump"
