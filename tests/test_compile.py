"""torch.compile(fullgraph=True): VTokModel's forward, the video tokenizer inside it included, traces as one graph
(no `.item()` / `.tolist()` / data-dependent Python branch) and gives the eager output.

The backend is "eager": dynamo's graph capture is what breaks on host syncs, and inductor's C++ code generation
would add about 100 s on a 2-core CPU. Videos of different lengths (`video_lengths`) are cut to their true length
with Python ints, so that path needs a host sync and is not fullgraph (docs/generation.md).
"""

import torch
from conftest import tiny_text_config, tiny_vision_config
from test_modeling_vtok import VTokModelTester


def test_model_forward_compiles_to_one_graph():
    one_layer = {"num_hidden_layers": 1}  # dynamo unrolls every layer: one is enough to show there is no break
    tester = VTokModelTester(
        temporal_stride=2, vision_config=tiny_vision_config() | one_layer, text_config=tiny_text_config() | one_layer
    )
    model = tester.model().model
    inputs = tester.inputs(frame_counts=(5,))
    del inputs["video_lengths"]  # every video fills the frame axis: no per-video cut, no host sync
    expected = model(**inputs, use_cache=False)
    torch._dynamo.reset()
    output = torch.compile(model, fullgraph=True, backend="eager")(**inputs, use_cache=False)
    assert output.video_tokens.shape == (tester.config.num_video_tokens(5), 32)
    for name in ("last_hidden_state", "video_hidden_states", "video_tokens"):
        torch.testing.assert_close(output[name], expected[name], rtol=0, atol=0)
