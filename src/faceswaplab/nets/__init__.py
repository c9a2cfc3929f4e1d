"""Plain ``nn.Module`` building blocks of the methods (no Lightning here)."""

from faceswaplab.nets.autoencoder import LIAE, Decoder, Encoder
from faceswaplab.nets.dlib_resnet import DlibFaceResNet, dlib_resnet
from faceswaplab.nets.init import init_weights
from faceswaplab.nets.patchgan import MultiscaleDiscriminator, PatchDiscriminator
from faceswaplab.nets.pix2pixhd import LocalEnhancer
from faceswaplab.nets.resnet import ResnetGenerator
from faceswaplab.nets.unet import UnetGenerator

__all__ = [
    "Decoder",
    "DlibFaceResNet",
    "Encoder",
    "LIAE",
    "LocalEnhancer",
    "MultiscaleDiscriminator",
    "PatchDiscriminator",
    "ResnetGenerator",
    "UnetGenerator",
    "dlib_resnet",
    "init_weights",
]
