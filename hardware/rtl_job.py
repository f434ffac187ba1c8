"""cocotb test module of the `rtl_sim` stage: one worker's share of the test images.

Environment: SNN_LAYOUT (layout.json of the exported model, memory files in plusargs),
SNN_WORKDIR (batch files), SNN_IMAGES (.npy of uint8 images). The testbench writes the
per-image results into SNN_WORKDIR/results.txt; the stage compares them with the golden
model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cocotb
import numpy as np

from hardware.driver import CoreDriver


@cocotb.test()
async def run_images(tb) -> None:
    layout = json.loads(Path(os.environ["SNN_LAYOUT"]).read_text())
    images = np.load(os.environ["SNN_IMAGES"])
    driver = CoreDriver(tb, Path(os.environ["SNN_WORKDIR"]))
    await driver.reset()
    await driver.reload(layout)
    await driver.run_batch(images)
