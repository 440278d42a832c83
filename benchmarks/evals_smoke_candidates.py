"""Which factual questions does SmolLM2-135M answer right at temperature 0? (Picks the smoke suite.)

    .venv/bin/python benchmarks/evals_smoke_candidates.py --local [--max-tokens 48]
    .venv/bin/python benchmarks/evals_smoke_candidates.py --base-url http://127.0.0.1:8000 --api-key KEY

`--local` runs the GGUF model in-process greedily, twice: with transformers in float32 and with the
gateway's own bfloat16 forward pass (`gateway.localmodel.model.LlamaLite`), and marks a question
robust only when both numerics contain the expected answer. `--base-url` asks a running gateway
(the model as served by Triton). The smoke suite (`evals/suites/data/smoke.jsonl`) keeps questions
that pass every way; this script is how that was checked.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CANDIDATES: list[tuple[str, list[str]]] = [
    ("What is the capital of France?", ["Paris"]),
    ("What is the capital of Japan?", ["Tokyo"]),
    ("What is the capital of Italy?", ["Rome"]),
    ("What is the capital of Germany?", ["Berlin"]),
    ("What is the capital of Spain?", ["Madrid"]),
    ("What is the capital of the United Kingdom?", ["London"]),
    ("What is the capital of Russia?", ["Moscow"]),
    ("What is the capital of Egypt?", ["Cairo"]),
    ("What is the capital of China?", ["Beijing"]),
    ("What is the capital of Canada?", ["Ottawa"]),
    ("Which planet is known as the Red Planet?", ["Mars"]),
    ("What is the largest planet in our solar system?", ["Jupiter"]),
    ("What is the chemical symbol for gold?", ["Au"]),
    ("What is the chemical formula of water?", ["H2O", "H₂O"]),
    ("Who wrote Romeo and Juliet?", ["Shakespeare"]),
    ("Who painted the Mona Lisa?", ["Leonardo", "Vinci"]),
    ("What gas do plants absorb from the air for photosynthesis?", ["carbon dioxide", "CO2"]),
    ("What is the boiling point of water in degrees Celsius?", ["100"]),
    ("How many continents are there on Earth?", ["seven", "7"]),
    ("What is the largest ocean on Earth?", ["Pacific"]),
    ("What is the freezing point of water in degrees Celsius?", ["0", "zero"]),
    ("Which animal is known as the king of the jungle?", ["lion"]),
    ("What is the closest star to Earth?", ["Sun"]),
    ("What language is spoken in Brazil?", ["Portuguese"]),
    ("What is the currency of Japan?", ["yen"]),
    ("How many days are in a week?", ["seven", "7"]),
    ("Who was the first President of the United States?", ["Washington"]),
    ("What is the tallest mountain in the world?", ["Everest"]),
    ("What is the longest river in Africa?", ["Nile"]),
    ("Which organ pumps blood through the human body?", ["heart"]),
]


def contains(text: str, expected: list[str]) -> bool:
    low = text.lower()
    return any(e.lower() in low for e in expected)


def local(max_tokens: int) -> dict[str, dict[str, str]]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from gateway.localmodel.model import LlamaLite, PrefillItem

    torch.set_num_threads(1)
    folder, name = ROOT / "models/smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    hf = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32)
    hf.eval()
    lite = LlamaLite(hf)
    eos = {tok.eos_token_id, *(tok.convert_tokens_to_ids(t) for t in ("<|im_end|>",))}
    out: dict[str, dict[str, str]] = {}
    for question, _ in CANDIDATES:
        ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                      tokenize=True)
        if hasattr(ids, "keys"):
            ids = ids["input_ids"]
        ids = list(ids)
        with torch.inference_mode():
            gen = hf.generate(torch.tensor([ids]), max_new_tokens=max_tokens, do_sample=False,
                              pad_token_id=tok.eos_token_id)
        fp32 = tok.decode(gen[0, len(ids):], skip_special_tokens=True)
        # The gateway's bf16 path: prefill, then greedy decode in slot 0.
        lite.reset_cache()
        k, v = lite.new_scratch(len(ids))
        logits = lite.prefill([PrefillItem(ids, 0, k, v)])
        lite.load_slot(0, k, v, len(ids))
        toks: list[int] = []
        pos = len(ids)
        nxt = int(logits[0].argmax())
        while nxt not in eos and len(toks) < max_tokens:
            toks.append(nxt)
            nxt = int(lite.decode([nxt], [pos])[0].argmax())
            pos += 1
        bf16 = tok.decode(toks, skip_special_tokens=True)
        out[question] = {"fp32": fp32, "bf16": bf16}
    return out


def remote(base_url: str, api_key: str, model: str, max_tokens: int) -> dict[str, dict[str, str]]:
    from openai import OpenAI

    client = OpenAI(base_url=f"{base_url.rstrip('/')}/v1", api_key=api_key, max_retries=2)
    out = {}
    for question, _ in CANDIDATES:
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": question}],
                                           temperature=0, max_tokens=max_tokens, seed=0)
        out[question] = {"gateway": r.choices[0].message.content or ""}
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--local", action="store_true")
    parser.add_argument("--base-url")
    parser.add_argument("--api-key", default=os.environ.get("LLMOPS_API_KEY", ""))
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--json", type=Path, help="write the raw answers here")
    args = parser.parse_args()
    t0 = time.perf_counter()
    answers = local(args.max_tokens) if args.local else remote(args.base_url, args.api_key, args.model, args.max_tokens)
    expected = dict(CANDIDATES)
    robust = 0
    print("| question | expected | " + " | ".join(next(iter(answers.values())).keys()) + " |")
    print("|---|---|" + "---|" * len(next(iter(answers.values()))))
    for question, runs in answers.items():
        ok = [contains(text, expected[question]) for text in runs.values()]
        robust += all(ok)
        cells = " | ".join(("PASS " if o else "FAIL ") + json.dumps(t[:70]) for o, t in zip(ok, runs.values(), strict=True))
        print(f"| {question} | {'/'.join(expected[question])} | {cells} |")
    print(f"\n{robust}/{len(answers)} pass every way ({time.perf_counter() - t0:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(answers, indent=1))


if __name__ == "__main__":
    main()
