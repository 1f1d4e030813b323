import pytest
import torch

from binarynet.training.losses import SquareHingeLoss, pm1_targets, square_hinge_loss


def test_square_hinge_hand_computed():
    scores = torch.tensor([[2.0, -0.5, 0.3], [0.0, 1.5, -2.0]])
    labels = torch.tensor([0, 2])
    # targets [[1,−1,−1],[−1,−1,1]]; 1 − t·y = [[−1, 0.5, 1.3], [1, 2.5, 3]] → clamp, square:
    # [[0, 0.25, 1.69], [1, 6.25, 9]] → mean = 18.19 / 6
    assert square_hinge_loss(scores, labels).item() == pytest.approx(18.19 / 6)
    assert SquareHingeLoss()(scores, pm1_targets(labels, 3)).item() == pytest.approx(18.19 / 6)


def test_gradient_matches_finite_differences():
    scores = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([0, 1, 2, 3, 0])
    assert torch.autograd.gradcheck(lambda s: square_hinge_loss(s, labels), (scores,))


def test_bad_targets():
    with pytest.raises(ValueError, match=r"0\.\.2"):
        pm1_targets(torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match="shape"):
        square_hinge_loss(torch.zeros(2, 3), torch.zeros(2, 4))
