"""The official `openai` Python client against a running `seer serve`
(tests/serve.rs starts the server and runs this with its address): model
list, a completion, a streamed chat, an image, and errors. Exits non-zero
with the failed check on any mismatch."""
import base64
import sys

import openai
from openai import OpenAI

base = sys.argv[1]
client = OpenAI(base_url=base + "/v1", api_key="not-needed")

models = sorted(m.id for m in client.models.list())
assert models == ["hf_gpt2", "shapes-model"], models

completion = client.completions.create(model="hf_gpt2", prompt="ROMEO:", max_tokens=5, temperature=0)
assert completion.object == "text_completion", completion
assert completion.choices[0].finish_reason in ("length", "stop"), completion
assert 1 <= completion.usage.completion_tokens <= 5, completion.usage
assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

pieces, finish, usage, chunks = [], None, None, 0
stream = client.chat.completions.create(
    model="hf_gpt2",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
    max_tokens=8,
    seed=3,
    stream=True,
    stream_options={"include_usage": True},
)
for chunk in stream:
    chunks += 1
    assert chunk.object == "chat.completion.chunk", chunk
    if chunk.usage:
        usage = chunk.usage
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
assert finish in ("length", "stop"), finish
assert usage is not None and usage.completion_tokens <= 8, usage
assert chunks >= 3, chunks

whole = client.chat.completions.create(
    model="hf_gpt2",
    messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"}],
    max_tokens=8,
    seed=3,
)
assert whole.choices[0].message.role == "assistant"
assert whole.choices[0].message.content == "".join(pieces).strip(), (whole, pieces)

images = client.images.generate(
    model="shapes-model", prompt="a red circle", n=2, size="32x32", response_format="b64_json",
    extra_body={"steps": 5, "seed": 1},
)
assert len(images.data) == 2, images
for picture in images.data:
    assert base64.b64decode(picture.b64_json)[:8] == b"\x89PNG\r\n\x1a\n"

try:
    client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.status_code == 404 and e.code == "model_not_found", (e.status_code, e.code)

try:
    client.chat.completions.create(model="hf_gpt2", messages=[{"role": "user", "content": "x"}], temperature=5)
    raise AssertionError("temperature 5 was accepted")
except openai.BadRequestError as e:
    assert e.status_code == 400 and e.param == "temperature", (e.status_code, e.param)

print("openai client: every check passed")
