"""Collectors: fetch (all I/O) and normalize (pure) for each source."""
