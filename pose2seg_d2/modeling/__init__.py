from .seg_module import Bottleneck, SegModule
