"""Command-line interface: ``ase-psm train | sample | denoise | evaluate | demo``."""
