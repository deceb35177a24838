"""libkvm's kernel-data calls on dumps (kernel-data.md): one module per call family.

* :mod:`.loadavg` -- ``kvm_getloadavg``
* :mod:`.cptime` -- ``kvm_getcptime``
* :mod:`.pcpu` -- ``kvm_getmaxcpu``, ``kvm_getncpus``, ``kvm_getpcpu``,
  ``kvm_dpcpu_setcpu``, ``kvm_read_zpcpu``, ``kvm_counter_u64_fetch``
* :mod:`.vnet` -- listing the vnets and choosing the one ``vnet_entry_`` lookups use
  (a pykvm extension, section 7; libkvm's own selection lives in :mod:`pykvm.kvm`)
* :mod:`.msgbuf` -- the kernel message buffer (a pykvm extension, section 7A)
* :mod:`.swap` -- ``kvm_getswapinfo``
* :mod:`.procs` -- ``kvm_getprocs``, ``kvm_getargv``, ``kvm_getenvv``
  (:mod:`.procs_legacy`: the rules of older releases' libkvm, ``legacy=True``)

Every function takes a :class:`~pykvm.kvm.Kvm` and reads kernel structures through the
layout model (``kd.types``, ``kd.struct``), never with fixed offsets.  Where libkvm returns
-1 (or NULL) with a message, these functions store the message (``kd.geterr()``) and raise
:class:`~pykvm.errors.KvmError` with it.  ``strict=True`` reproduces FreeBSD exactly
(Appendix B of kernel-data.md), as does every call on a descriptor opened with
``strict=True``; the default applies pykvm's documented deviations.  The calls are also
methods of the descriptor (``kd.getprocs(...)``).
"""
