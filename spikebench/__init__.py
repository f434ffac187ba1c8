"""spikebench: a reproducible benchmark harness for efficient spiking neural networks."""

__version__ = "0.1.0"
