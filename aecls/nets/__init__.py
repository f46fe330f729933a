"""Plain nn.Module encoders and decoders, built from one typed `NetConfig`."""

from aecls.nets.cnn import CNNDecoder, SupervisedCNN
from aecls.nets.config import ARCHS, NetConfig, build_decoder, build_encoder
from aecls.nets.conv import ConvDecoder, ConvEncoder
from aecls.nets.mlp import MLPDecoder, MLPEncoder

__all__ = ["ARCHS", "CNNDecoder", "ConvDecoder", "ConvEncoder", "MLPDecoder", "MLPEncoder", "NetConfig",
           "SupervisedCNN", "build_decoder", "build_encoder"]
