"""The ANN accelerator flow: an output-stationary MAC array on the same silicon as the SNN core.

  quantise.py  post-training quantisation of a float ANN into an `IntAnn` (k-bit weights,
               8-bit activations, integer requantisation by multiply-and-shift)
  golden.py    the bit-exact integer reference (logits, MAC/skip counts, the cycle model)
  config.py    the array's Verilog parameters (`AnnHwConfig`), sized to a model
  export.py    `IntAnn` -> memory images (descriptors, weight rows, bias rows) + layout.json
  sim.py       Verilator runs of hardware/tb/ann_tb.v over whole batches of images
"""
