import jax
import jax.numpy as jnp

from jaxgen.models.autoencoders import ConvVAE
from jaxgen.summary import layer_table, layer_table_markdown


def test_layer_table_rows_add_up_to_the_model():
    model = ConvVAE((32, 32, 3), 16, (8, 16))
    x = jnp.zeros((1, 32, 32, 3))
    params = model.init(jax.random.key(0), x, jax.random.key(1))
    rows = layer_table(model, params, x, jax.random.key(1))
    assert [r["layer"] for r in rows] == ["encoder/conv1", "encoder/conv2", "encoder/to_code", "decoder/from_code",
                                         "decoder/upconv1", "decoder/upconv2"]
    assert [r["output_shape"] for r in rows] == [[16, 16, 8], [8, 8, 16], [32], [1024], [16, 16, 8], [32, 32, 3]]
    assert rows[0]["kernel/stride"] == "4x4 / 2" and rows[0]["channels"] == "3 -> 8"
    assert rows[0]["parameters"] == 4 * 4 * 3 * 8 + 8
    assert sum(r["parameters"] for r in rows) == sum(p.size for p in jax.tree.leaves(params))
    assert "| **total** |" in layer_table_markdown(rows)
