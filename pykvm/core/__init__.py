"""Where physical memory comes from: the core file and its page indexes."""
