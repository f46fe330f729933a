"""The ground floor every layer may import: errors, constants, paths, locking, progress, plotting.
Nothing here imports torch or another aecls layer."""
