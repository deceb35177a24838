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

# -- kernel-data calls (kernel-data.md 0.7, 1.2, 1.7, 4.1, 9.1; pykvm/kernel/) -------------
KERN_PROC_ALL = 0
KERN_PROC_PID = 1
KERN_PROC_PGRP = 2
KERN_PROC_SESSION = 3
KERN_PROC_TTY = 4
KERN_PROC_UID = 5
KERN_PROC_RUID = 6
KERN_PROC_PROC = 8
KERN_PROC_RGID = 10
KERN_PROC_GID = 11
KERN_PROC_INC_THREAD = 0x10
CPUSTATES = 5
CP_USER = 0
CP_NICE = 1
CP_SYS = 2
CP_INTR = 3
CP_IDLE = 4
FSHIFT = 11
FSCALE = 1 << FSHIFT
SWIF_DUMP_TREE = 0x0001
SWIF_DEV_PREFIX = 0x0002
KVM_SWAP_SIZE = 52
SWAP_DEVNAME_LEN = 32
PATH_DEV = "/dev/"
NFS_SWAP_NAME = "[NFS swap]"
VCHR = 4
P_CONTROLT = 0x00002
P_STOPPED_SIG = 0x20000
P_STOPPED_TRACE = 0x40000
P_STOPPED_SINGLE = 0x80000
P_SHOULDSTOP = P_STOPPED_SIG | P_STOPPED_TRACE | P_STOPPED_SINGLE
PRS_NEW = 0
PRS_NORMAL = 1
PRS_ZOMBIE = 2
TDS_INACTIVE = 0
TDS_INHIBITED = 1
TDS_CAN_RUN = 2
TDS_RUNQ = 3
TDS_RUNNING = 4
TDI_SUSPENDED = 0x1
TDI_SLEEPING = 0x2
TDI_SWAPPED = 0x4
TDI_LOCK = 0x8
TDI_IWAIT = 0x10
CRED_FLAG_CAPMODE = 0x1
NOCPU = -1
NOCPU_OLD = 255
MAXCPU_OLD = 254
SIDL = 1
SRUN = 2
SSLEEP = 3
SSTOP = 4
SZOMB = 5
SWAIT = 6
SLOCK = 7
KI_CTTY = 1
KI_SLEADER = 2
KI_LOCKBLOCK = 4
KI_CRF_CAPABILITY_MODE = 1
KI_CRF_GRP_OVERFLOW = 0x80000000
KI_NGROUPS = 16
WMESGLEN = 8
LOCKNAMELEN = 8
KI_EMULNAMELEN = 16
KI_LOGINLEN = 18
KI_TDNAMELEN = 17
KI_COMMLEN = 19
MSG_MAGIC = 0x063062
#: pykvm's bounds on counts read from a dump (corruption guards)
MAX_PCPU = 65536
MAX_PROC_WALK = 1 << 22
MAX_MSGBUF = 1 << 26

#: ``ARG_MAX`` (sys/sys/syslimits.h): 512 KiB on LP64 targets, 256 KiB on ILP32 ones;
#: kvm_argv never returns more
ARG_MAX_LP64 = 2 * 256 * 1024
ARG_MAX_ILP32 = 256 * 1024
