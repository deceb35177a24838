"""The kernel image: ELF header, sections and the symbol table."""
