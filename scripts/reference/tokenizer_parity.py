"""Encodes test strings with Hugging Face's Python `tokenizers` using the
tokenizer.json files seer wrote, and records ids and decoded text in
expected.json for tests/tokenize.rs."""
import json
import sys
from pathlib import Path

from tokenizers import Tokenizer

folder = Path(sys.argv[1])
BPE_TEXTS = [
    "ROMEO: But soft, what light through yonder window breaks?",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
    "emoji 🙂🚀 and CJK 你好，世界 and ü ß é",
    "control\tchars\x00\x01\x1b[0m\r\n and trailing spaces   ",
    "a<|endoftext|>b",
    "",
]
CHAR_TEXTS = [
    "ROMEO: But soft, what light?",
    "First Citizen:\nBefore we proceed any further, hear me speak.\n\n",
    "",
]
expected = {}
for kind, texts in (("bpe", BPE_TEXTS), ("char", CHAR_TEXTS)):
    tok = Tokenizer.from_file(str(folder / f"{kind}.json"))
    rows = []
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False).ids
        rows.append({"text": text, "ids": ids, "decoded": tok.decode(ids, skip_special_tokens=False)})
    expected[kind] = rows
(folder / "expected.json").write_text(json.dumps(expected, ensure_ascii=False, indent=1))
print(f"wrote {folder / 'expected.json'}")
