"""Synthesis and timing flow of the accelerator core (yosys, OpenSTA, OSU 0.18 um Liberty)."""
