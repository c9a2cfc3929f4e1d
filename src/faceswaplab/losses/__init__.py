"""Losses shared by the methods."""

from faceswaplab.losses.autoencoder import reconstruction_terms
from faceswaplab.losses.gan import GANLoss, feature_matching_loss
from faceswaplab.losses.identity import FacePerceptualLoss, IdentityLoss
from faceswaplab.losses.perceptual import VGGLoss, vgg_loss_if_cached
from faceswaplab.losses.reconstruction import masked_l1, ssim, ssim_loss, ssim_map

__all__ = ["FacePerceptualLoss", "GANLoss", "IdentityLoss", "VGGLoss", "feature_matching_loss", "masked_l1",
           "reconstruction_terms", "ssim", "ssim_loss", "ssim_map", "vgg_loss_if_cached"]
