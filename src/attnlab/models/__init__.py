"""Models: ResNets with attention embedded, torchvision-compatible; the model registry."""

from . import text, text_mlm, unet, video  # noqa: F401  (register the text models, the U-Nets, the video model)
from .registry import create_model, get_model_builder, list_models, register_model
from .resnet import BasicBlock, Bottleneck, ResNet, plan_attention, resnet18, resnet34, resnet50, resnet101
from .unet import UNet
from .weights import load_torchvision_weights, read_state_dict

__all__ = [
    "BasicBlock",
    "Bottleneck",
    "ResNet",
    "UNet",
    "create_model",
    "get_model_builder",
    "list_models",
    "load_torchvision_weights",
    "plan_attention",
    "read_state_dict",
    "register_model",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
]
