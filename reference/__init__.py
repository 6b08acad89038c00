"""The reference suite: checks pygrad's values and gradients against PyTorch and finite differences."""
