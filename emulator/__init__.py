"""jCardSim cards behind pcscd: the vpcd bridge, the launcher, the pytest plugin."""
