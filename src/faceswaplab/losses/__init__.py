"""Losses shared by the methods."""

from faceswaplab.losses.gan import GANLoss, feature_matching_loss
from faceswaplab.losses.perceptual import VGGLoss
from faceswaplab.losses.reconstruction import masked_l1, ssim, ssim_loss

__all__ = ["GANLoss", "VGGLoss", "feature_matching_loss", "masked_l1", "ssim", "ssim_loss"]
