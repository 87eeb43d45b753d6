"""Model building: RAM moment matrices, likelihoods and the PyMC model."""
