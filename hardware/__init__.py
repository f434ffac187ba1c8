"""The spikebench SNN accelerator: RTL (rtl/), exporter, golden model, simulation, stages."""
