"""ANN baselines built for conversion: ReLU, average pooling, optional BN and bias."""
