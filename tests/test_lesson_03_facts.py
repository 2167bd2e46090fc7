"""Facts lesson 03 (the explorer) states in its prose that no output cell of the lesson prints."""

import torch

from support.explorer import QuantizationExplorer, explorer_quantize


def test_symmetric_mode_loses_minus_8_always_and_7_on_the_random_normal_tensor():
    """Cell c03-21: of the 16 codes at 4 bits, symmetric min-max uses 14 on the random normal
    tensor (size 64, seed 0): -8 is out of reach, and 7 stays unused because the largest value
    lies closer to 0 than the smallest, which sets the scale."""
    tensor = QuantizationExplorer().tensor("random normal", 64, 0)
    q = explorer_quantize(tensor, torch.int8, 4, mode="symmetric").quantized
    assert sorted(set(q.flatten().tolist())) == list(range(-7, 7))
    assert tensor.max() < -tensor.min()
