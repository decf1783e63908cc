"""Tour parts for the generative half of the chapter (autoencoders, VAE, GANs)."""

GENERATIVE_PARTS: dict = {}
