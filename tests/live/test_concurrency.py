from __future__ import annotations

import asyncio

from tests.conftest import Gateway


def test_32_concurrent_chats_on_the_local_model(gateway: Gateway) -> None:
    questions = [f"What is {i} plus {i}?" for i in range(32)]

    async def run() -> list[str]:
        client = gateway.async_client(timeout=600)
        async def one(q: str) -> str:
            r = await client.chat.completions.create(
                model="smollm2", messages=[{"role": "user", "content": q}], max_tokens=12, temperature=0)
            assert r.usage is not None and r.usage.completion_tokens > 0
            return r.choices[0].message.content or ""
        out = await asyncio.gather(*(one(q) for q in questions))
        await client.close()
        return out

    answers = asyncio.run(run())
    assert len(answers) == 32 and all(answers)
    # Greedy decoding: a batched answer must equal the same question asked alone.
    alone = gateway.client().chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": questions[5]}], max_tokens=12, temperature=0)
    assert alone.choices[0].message.content == answers[5]
