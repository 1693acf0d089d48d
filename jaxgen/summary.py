"""Layer tables of flax models: one row per layer with kernel/stride, channels, output shape, parameters."""
from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

from jaxgen.models.layers import DownConv, UpConv

# Layers that own parameters; containers (encoders, decoders, whole models) are walked through.
LAYER_TYPES = (nn.Conv, nn.ConvTranspose, nn.Dense, DownConv, UpConv)


def _kernel_stride(module) -> str:
    if isinstance(module, DownConv):  # 4x4 convolution, stride 2
        return "4x4 / 2"
    if isinstance(module, UpConv):  # 4x4 transposed convolution, stride 2
        return "4x4 / 2 (transposed)"
    if isinstance(module, (nn.Conv, nn.ConvTranspose)):
        kernel = "x".join(str(k) for k in module.kernel_size)
        strides = module.strides if module.strides is not None else 1
        stride = strides if isinstance(strides, int) else strides[0]
        kind = " (transposed)" if isinstance(module, nn.ConvTranspose) else ""
        return f"{kernel} / {stride}{kind}"
    return "-"


def layer_table(model: nn.Module, params, *args, method=None, **kwargs) -> list[dict]:
    """Rows {'layer', 'type', 'kernel/stride', 'channels', 'output_shape', 'parameters'} for each
    parameterised layer, in call order, from tracing `model.apply(params, *args, method=method)`
    (shapes only: nothing is computed)."""
    rows = []

    def record(next_fun, call_args, call_kwargs, context):
        output = next_fun(*call_args, **call_kwargs)
        module = context.module
        if context.method_name == "__call__" and isinstance(module, LAYER_TYPES):
            subtree = params["params"]
            for name in module.path:
                subtree = subtree[name]
            rows.append({"layer": "/".join(module.path), "type": type(module).__name__,
                         "kernel/stride": _kernel_stride(module),
                         "channels": f"{call_args[0].shape[-1]} -> {output.shape[-1]}",
                         "output_shape": list(output.shape[1:]),
                         "parameters": int(sum(np.prod(x.shape) for x in jax.tree.leaves(subtree)))})
        return output

    with nn.intercept_methods(record):
        jax.eval_shape(lambda p, a: model.apply(p, *a, method=method, **kwargs), params, args)
    return rows


def layer_table_markdown(rows: list[dict]) -> str:
    headers = ["layer", "type", "kernel/stride", "channels", "output_shape", "parameters"]
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        shape = "x".join(str(s) for s in row["output_shape"])
        lines.append(f"| {row['layer']} | {row['type']} | {row['kernel/stride']} | {row['channels']} | {shape} "
                     f"| {row['parameters']:,} |")
    lines.append(f"| **total** | | | | | **{sum(r['parameters'] for r in rows):,}** |")
    return "\n".join(lines)
