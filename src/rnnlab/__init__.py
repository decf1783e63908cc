"""rnnlab: the systems of one deep-learning chapter (RNNs, LSTM, GRU, autoencoders, VAEs,
GANs, adversarial examples) as one PyTorch library and command-line tool."""

__version__ = "0.1.0"
