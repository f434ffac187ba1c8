"""One module per SNN method; each is a pipeline stage run as `python -m methods.<name>`."""
