"""Makes the fixtures for seer's GGUF tokenizers and chat templates
(src/formats/gguf_tokenizer.rs, src/formats/chat_template.rs): what
transformers computes from a GGUF file's tokenizer metadata.

Run from the repository root, with transformers (5.x), gguf, sentencepiece and
jinja2 installed (the 98 MB model file is read once; the tests never need it):

    python scripts/reference/gguf_tokenizer_parity.py \
        path/to/SmolLM2-135M-Instruct.Q4_1.gguf tests/fixtures/gguf

It writes, deterministically:
- smollm2_tokenizer.gguf: the model file's tokenizer.* and general.* metadata
  (byte-level BPE, pre-tokenizer 'smollm', ChatML template) and no tensors;
- smollm2_tokenizer.json: transformers' ids for a corpus (digits, code,
  whitespace runs, tabs and newlines, accents, CJK, emoji, special tokens in
  text), its decodings, and apply_chat_template strings for conversations;
- spm_llama.gguf, spm_gemma3.gguf: a small SentencePiece BPE vocabulary
  (trained here with the sentencepiece package; byte fallback, Gemma's special
  tokens) stored as llama.cpp stores one (tokens, scores, token types), under
  the architectures 'llama' and 'gemma3', which transformers builds differently;
- spm_tokenizer.json: transformers' ids for both, and sentencepiece's own;
- chat_templates.json: templates that exercise what Hugging Face's jinja
  environment offers (trim_blocks, lstrip_blocks, tojson, raise_exception,
  python string methods, namespace, loop controls), rendered by transformers.
"""
import json
import sys
import tempfile
from pathlib import Path

import gguf
import numpy as np
import sentencepiece as spm
from transformers import AutoTokenizer, PreTrainedTokenizerBase

MODEL = Path(sys.argv[1])
OUT = Path(sys.argv[2])
OUT.mkdir(parents=True, exist_ok=True)

CORPUS = [
    "Hello, world!",
    "12345 3.14159 and 1,000,000 or 2024-06-01",
    "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "    indented\n\n\n  spaces   between\t\ttabs\r\nwindows line",
    "trailing spaces   ",
    "   leading spaces",
    "Café déjà vu, naïve façade, Ærøskøbing, Straße",
    "日本語のテキストと中文文本，还有한국어",
    "emoji 🙂🚀👩‍👩‍👧 and flags 🇫🇷",
    "I'm sure you'll see they've done it, didn't they? DON'T SHOUT",
    "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
    "text<|endoftext|>more text",
    "x<|im_end|>y<|im_start|>",
    "fake <|im_start special token",
    "",
    " ",
    "\n",
    "a\u00a0b\u2003c\u200bd",
    "<script>alert('x & y')</script>",
]

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2 + 2?"}],
    [
        {"role": "system", "content": "You are a terse assistant."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one?"},
    ],
    [
        {"role": "user", "content": "  Hello there  "},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Say 'é' and 你好 and 🙂."},
    ],
]


def copy_tokenizer_metadata(reader, path, arch):
    """A GGUF with `reader`'s general.* and tokenizer.* fields and no tensors."""
    writer = gguf.GGUFWriter(str(path), arch)
    for name, field in reader.fields.items():
        if not (name.startswith("general.") or name.startswith("tokenizer.")):
            continue
        if name == "general.architecture":
            continue  # the writer adds it
        vtype = gguf.GGUFValueType(field.types[0])
        sub = gguf.GGUFValueType(field.types[1]) if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(name, field.contents(), vtype, sub)
    write(writer)


def write(writer):
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def load(path):
    return AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)


def encodings(tok, texts):
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        rows.append(
            {
                "text": text,
                "ids": ids,
                "with_special": tok.encode(text, add_special_tokens=True),
                "decoded": tok.decode(ids, skip_special_tokens=False),
            }
        )
    return rows


def chats(tok, template=None):
    rows = []
    for messages in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            text = tok.apply_chat_template(
                messages,
                chat_template=template,
                tokenize=False,
                add_generation_prompt=add_generation_prompt,
            )
            rows.append(
                {
                    "messages": messages,
                    "add_generation_prompt": add_generation_prompt,
                    "text": text,
                    "ids": tok.encode(text, add_special_tokens=False),
                }
            )
    return rows


def smollm2():
    fixture = OUT / "smollm2_tokenizer.gguf"
    copy_tokenizer_metadata(gguf.GGUFReader(str(MODEL)), fixture, "llama")
    full, small = load(MODEL), load(fixture)
    assert full.get_vocab() == small.get_vocab()
    result = {
        "source": MODEL.name,
        "bos_token": small.bos_token,
        "eos_token": small.eos_token,
        "encodings": encodings(small, CORPUS),
        "chats": chats(small),
    }
    assert result["encodings"] == encodings(full, CORPUS)
    (OUT / "smollm2_tokenizer.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


GEMMA_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

SPM_TRAINING = """The quick brown fox jumps over the lazy dog. Pack my box with five dozen liquor jugs.
A tokenizer cuts text into pieces; a model predicts the next piece from the ones before it.
Sentences are split into words, words into sub-words, and rare characters into bytes.
def main():
    for i in range(10):
        print(i, "hello world")
    return None
Numbers like 2024, 3.14 and 1000000 are split into digits one by one.
Les élèves étudient à l'école; der Fluß fließt; el niño está aquí.
Chat turns look like this: <start_of_turn>user hello<end_of_turn> and then the model answers.
"""

SPM_TEXTS = [
    "Hello world",
    "The quick brown fox",
    " leading space and  two  spaces   three",
    "tabs\tand\nnewlines\n\nend",
    "digits 12345 and 3.14",
    "Les élèves à l'école",
    "unknown 日本語 and emoji 🙂",
    "<start_of_turn>user\nhello<end_of_turn>\n",
    "<bos>text<eos><mask>",
    "    def main():",
    "",
]


def spm_fixtures():
    """Trains a tiny SentencePiece BPE model and stores it as llama.cpp would."""
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text(SPM_TRAINING * 3)
        spm.SentencePieceTrainer.train(
            input=str(corpus),
            model_prefix=str(Path(tmp) / "m"),
            model_type="bpe",
            vocab_size=420,
            byte_fallback=True,
            split_digits=True,
            normalization_rule_name="identity",
            remove_extra_whitespaces=False,
            allow_whitespace_only_pieces=True,
            add_dummy_prefix=False,
            pad_id=0,
            eos_id=1,
            bos_id=2,
            unk_id=3,
            pad_piece="<pad>",
            eos_piece="<eos>",
            bos_piece="<bos>",
            control_symbols=["<mask>"],
            user_defined_symbols=["<start_of_turn>", "<end_of_turn>"],
            character_coverage=0.9995,
            num_threads=1,
            minloglevel=2,
        )
        sp = spm.SentencePieceProcessor(model_file=str(Path(tmp) / "m.model"))
    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        # llama.cpp's token types: 1 normal, 2 unknown, 3 control, 4 user-defined, 6 byte.
        types.append(
            2 if sp.is_unknown(i) else 3 if sp.is_control(i) else 6 if sp.is_byte(i)
            else 4 if tokens[-1].startswith("<") and tokens[-1].endswith("_turn>") else 1
        )
    result = {"sentencepiece": [sp.encode(t) for t in SPM_TEXTS]}
    for arch in ("llama", "gemma3"):
        path = OUT / f"spm_{arch}.gguf"
        writer = gguf.GGUFWriter(str(path), arch)
        writer.add_name(f"tiny sentencepiece BPE ({arch})")
        writer.add_tokenizer_model("llama")
        writer.add_tokenizer_pre("default")
        # Gemma's files store a token made of two or more spaces with real spaces.
        stored = [t.replace("\u2581", " ") if arch == "gemma3" and len(t) > 1 and set(t) == {"\u2581"} else t
                  for t in tokens]
        writer.add_token_list(stored)
        writer.add_token_scores([float(np.float32(s)) for s in scores])
        writer.add_token_types(types)
        writer.add_bos_token_id(2)
        writer.add_eos_token_id(1)
        writer.add_unk_token_id(3)
        writer.add_pad_token_id(0)
        writer.add_add_bos_token(True)
        writer.add_add_eos_token(False)
        writer.add_add_space_prefix(arch == "llama")
        writer.add_chat_template(GEMMA_TEMPLATE)
        write(writer)
        tok = load(path)
        result[arch] = {
            "bos_token": tok.bos_token,
            "eos_token": tok.eos_token,
            "encodings": encodings(tok, SPM_TEXTS),
            "chats": chats(tok),
        }
    (OUT / "spm_tokenizer.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


FEATURE_TEMPLATES = {
    "llama3": (
        "{% set loop_messages = messages %}{% for message in loop_messages %}"
        "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
        "+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
        "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
    ),
    "blocks": (
        "<s>\n"
        "  {% for m in messages %}\n"
        "    {% if m.role == 'system' %}\n"
        "[SYS] {{ m.content }}\n"
        "    {% else %}\n"
        "{{ m.role }}: {{ m.content }}\n"
        "    {% endif %}\n"
        "  {% endfor %}\n"
        "{% if add_generation_prompt %}assistant:{% endif %}\n"
    ),
    "python_methods": (
        "{%- set ns = namespace(system='none') -%}\n"
        "{%- for m in messages -%}\n"
        "{%- if m['role'] == 'system' %}{% set ns.system = m['content'].strip() %}{% continue %}{% endif -%}\n"
        "{{ m['role'].upper() }}|{{ m['content'].strip().lower() }}|{{ m['content'].split() | join('_') }}"
        "{% if m['content'].startswith('Name') %}|starts{% endif %}"
        "{% if m['content'].endswith('?') %}|asks{% endif %}"
        "|{{ m['content'].replace('a', 'A') }}\n"
        "{%- if loop.index > 2 %}{% break %}{% endif %}\n"
        "{% endfor -%}\n"
        "system={{ ns.system }} eos={{ eos_token }} bos={{ bos_token }}"
    ),
    "tojson": (
        "{{ messages | tojson }}\n"
        "{{ messages[0] | tojson(indent=2) }}\n"
        "{{ {'text': 'a<b> & \\'c\\' é 🙂', 'n': 1, 'x': 1.5, 'ok': true, 'none': none} | tojson }}"
    ),
    "raise": (
        "{% for m in messages %}{% if m['role'] == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "{{ m['content'] }}{% endfor %}"
    ),
}


def feature_templates(tok):
    rows = []
    for name, template in FEATURE_TEMPLATES.items():
        cases = []
        for case in chats_or_errors(tok, template):
            cases.append(case)
        rows.append({"name": name, "template": template, "cases": cases})
    return rows


def chats_or_errors(tok, template):
    for messages in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            try:
                text = tok.apply_chat_template(
                    messages, chat_template=template, tokenize=False, add_generation_prompt=add_generation_prompt
                )
                yield {"messages": messages, "add_generation_prompt": add_generation_prompt, "text": text}
            except Exception as e:  # noqa: BLE001 - the message is what the fixture records
                yield {"messages": messages, "add_generation_prompt": add_generation_prompt, "error": str(e)}


def chat_templates():
    tok = load(OUT / "smollm2_tokenizer.gguf")
    assert isinstance(tok, PreTrainedTokenizerBase)
    result = {"bos_token": tok.bos_token, "eos_token": tok.eos_token, "templates": feature_templates(tok)}
    (OUT / "chat_templates.json").write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")


smollm2()
spm_fixtures()
chat_templates()
for path in sorted(OUT.iterdir()):
    print(f"{path}: {path.stat().st_size} bytes")
