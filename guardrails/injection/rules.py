"""Hand-written cue features for the linear model (not a rule-based detector on their own).

Each regex marks a generic prompt-injection move, written from public descriptions of
the attack classes (OWASP LLM01, the BIPIA / garak taxonomies), not fitted to our test
rows. A hit becomes one extra feature; logistic regression learns how much each cue
counts, so a cue that also fires on benign text ("act as a tutor") gets a small weight.
Changing this list changes the feature space: bump ``RULES_VERSION`` and retrain.

Since v3 the main cues also match the same move in eleven other languages (es, fr, de, it, pt, nl, pl,
ru, tr, zh, ja), as alternatives of the *same* cue: the weight learned from the plentiful English attacks
carries over to "Ignoriere alle vorherigen Anweisungen" without per-language training data (v6, with
English cues only, caught 0 of 81 such injections). English look-alikes ("instructions", "filter",
"prompt") appear in these alternatives only beside another language's word, so English text fires
them no more often than the English cues themselves. CJK alternatives carry no ``\b``: those scripts
put no spaces between words.
"""

from __future__ import annotations

import re
from typing import Any, Final

RULES_VERSION: Final = 3
_W = r"(?:\w+\W+)"  # one filler word; \w and \W are disjoint, so no catastrophic backtracking


def _trie(alternatives: str) -> str:
    """A regex for any of the ``|``-separated words or phrases (``*`` at the end: any word ending),
    factored by shared prefix: ``re`` tries alternatives one by one, and the flat list of ~40 words
    added ~2.6x as much per document as this."""
    root: dict[str, dict[str, Any]] = {}
    for word in alternatives.split("|"):
        node = root
        for ch in word.removesuffix("*"):
            node = node.setdefault(ch, {})
        node["*" if word.endswith("*") else ""] = {}
    return _emit(root)


def _emit(node: dict[str, dict[str, Any]]) -> str:
    if "*" in node:
        return r"\w*"
    branches = [re.escape(ch) + _emit(child) for ch, child in sorted(node.items()) if ch]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    return f"(?:{body})?" if "" in node else body


_CJK_GAP = r"[^。！？.!?\n]{0,15}"  # within one CJK clause
# Before every CJK alternative: one character-class test per position instead of one per alternative.
_CJK = r"(?=[\u3040-\u30ff\u3400-\u9fff])"
_CJK_RULES = r"(?:指令|指示|规则|規則|提示词|提示|ルール|命令|プロンプト)"
# What the instructions are called (es, fr, de, it, pt, nl, pl, ru, tr), then the verbs.
_ML_RULES = _trie(
    "instrucciones|indicaciones|reglas|normas|consignes|règles|instructions précédentes|instructions antérieures|"
    "instructions initiales|anweisung*|regeln|vorgaben|richtlinien|istruzioni|regole|direttive|instruções|instrucoes|"
    "regras|diretrizes|instructies|regels|instrukcj*|polecenia|zasady|reguł*|инструкц*|указани*|правила|правил|"
    "talimat*|kural*|prompt|prompts|промпт*|systemprompt*|systeemprompt*"
)
_ML_IGNORE = _trie(
    "ignora|ignoras|ignorad|ignoren|ignorar|ignore|ignorez|ignorer|ignoriere|ignorieren|ignorate|ignorare|ignorem|"
    "olvid*|omite|omitir|omita|oubli*|vergiss|vergessen|missachte*|dimentic*|esqueç*|esquec*|desconsider*|negeer|"
    "vergeet|zignoruj|ignoruj|zapomnij|игнорир*|забудь*|забыть|yoksay*|unut*"
)
_ML_SYSTEM = _trie(
    "mensaje de sistema|mensaje del sistema|prompt de sistema|prompt del sistema|instrucciones de sistema|"
    "instrucciones del sistema|indicaciones del sistema|prompt système|prompt du système|message système|"
    "message du système|instructions système|instructions du système|invite système|consignes système|systemprompt*|"
    "systemanweisung*|systemnachricht*|prompt di sistema|istruzioni di sistema|messaggio di sistema|prompt do sistema|"
    "instruções do sistema|instruções de sistema|mensagem do sistema|mensagem de sistema|systeemprompt*|"
    "systeeminstructies|prompt systemowy|instrukcje systemowe|системный промпт*|системного промпт*|системные инструкц*|"
    "системных инструкц*|системное сообщени*|системного сообщени*|системная подсказк*|sistem istemi*|sistem mesaj*|"
    "sistem talimat*|instrucciones ocultas|instructions cachées|versteckten anweisungen|istruzioni nascoste|"
    "instruções ocultas|ukryte instrukcje|ukrytymi instrukcjami|скрытые инструкции|скрытыми инструкциями"
)
_ML_REVEAL = _trie(
    "muestra*|muéstra*|revela*|repite|imprime|affiche*|montre*|révèle*|répète*|recopie*|zeig*|gib|verrate*|"
    "wiederhole*|mostra*|rivela*|ripeti*|stampa*|mostre|revele|repita|toon|herhaal|pokaż|powtórz|ujawnij|wypisz|"
    "skopiuj|покажи|выведи|повтори|раскрой"
)
_ML_PERSONA = _trie(
    "a partir de ahora eres|ahora eres|desde ahora eres|tu es maintenant|désormais tu es|désormais, tu es|"
    "à partir de maintenant tu es|à partir de maintenant, tu es|du bist jetzt|du bist nun|du bist ab sofort|"
    "ab jetzt bist du|von nun an bist du|da ora in poi sei|da adesso in poi sei|ora sei|adesso sei|"
    "a partir de agora você é|a partir de agora, você é|de agora em diante você é|de agora em diante, você é|"
    "agora você é|vanaf nu ben je|je bent nu|od teraz jesteś|teraz jesteś|теперь ты|с этого момента ты|artık sen|"
    "bundan sonra sen|finge ser|fingi di essere|finja ser|fais semblant d'être|притворись"
)
_ML_WITHOUT = _trie("sin|sans|ohne|senza|sem|zonder|bez|без")
_ML_LIMITS = _trie(
    "restricci*|restriction*|restrizion*|restriç*|filtr*|filter*|límites|limites|limiti|limite|reglas|règles|regeln|"
    "regole|regras|regels|censura|censure|zensur|cenzur*|ética|etica|éthique|ethik|morale|moral|einschränkung*|"
    "beperkingen|ograniczeń|ограничени*|фильтр*|правил|цензур*|морал*"
)
_ML_DISABLED = _trie("desactivad*|désactivé*|deaktiviert|disattivat*|desativad*|wyłączon*|отключен*")
_ML_MODES = _trie(
    "modo desarrollador|modo desenvolvedor|modo dios|modo sin restricciones|modo jailbreak|mode développeur|"
    "mode sans restriction*|entwicklermodus|modalità sviluppatore|ontwikkelaarsmodus|tryb deweloperski|"
    "tryb dewelopera|режим разработчика|режим без ограничений|geliştirici modu*"
)
_ML_NEVER_REFUSE = _trie(
    "nunca te niegas|nunca te niegues|nunca niegas|nunca rechazas|nunca recusa|nunca recuse|no te niegues|"
    "ne refuse jamais|ne refuses jamais|niemals ablehn*|nie ablehn*|lehnst nie ab|lehnst niemals ab|verweigere nie|"
    "non rifiuta mai|non rifiutare mai|non rifiuti mai|nigdy nie odmawia*|никогда не отказыва*|не отказывай*"
)

_ENGLISH: Final[tuple[tuple[str, str], ...]] = (
    (
        "override_instructions",
        rf"\b(?:ignore|disregard|forget|skip|override|bypass|abandon|drop)\W+{_W}{{0,4}}"
        r"(?:previous|prior|above|earlier|preceding|initial|original|all|any|your|the|these|those)\W+"
        rf"{_W}{{0,2}}(?:instructions?|directions?|rules?|prompts?|guidelines?|directives?|commands?|context|programming)\b",
    ),
    (
        "system_prompt_ref",
        r"\b(?:system|initial|hidden|original|secret|developer|internal|starting|confidential)\W+"
        r"(?:prompt|instructions?|message|configuration|directives?|rules)\b",
    ),
    (
        "reveal_prompt",
        rf"\b(?:reveal|print|show|output|repeat|display|dump|leak|tell me|recite|quote|spell out)\W+{_W}{{0,5}}"
        r"(?:prompt|instructions?|rules|guidelines|configuration)\b",
    ),
    (
        "persona_switch",
        r"\b(?:you are now|you're now|you are no longer|from now on,? you|you will now|you must now|"
        r"pretend (?:to be|you are|you're)|act as (?:an?|my)? ?\w+ (?:ai|model|assistant|bot)|roleplay as|"
        r"stay in character|never break character)\b",
    ),
    (
        "no_restrictions",
        rf"\b(?:no|without|free (?:of|from)|bypass\w*|ignor\w+|break\w*|remov\w+|disabl\w+|unbound)\W+{_W}{{0,2}}"
        r"(?:restrictions?|filters?|filtering|limitations?|guidelines|rules|censorship|ethics|ethical|morals?|"
        r"polic(?:y|ies)|guardrails|safeguards|boundaries)\b",
    ),
    (
        "special_mode",
        r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|dan|sudo|admin|maintenance|debug|opposite)\s+mode\b",
    ),
    ("named_jailbreak", r"\b(?:DAN|STAN|DUDE|AIM|AntiDAN|jailbr(?:ea|o)k(?:en|ing)?|do anything now)\b"),
    (
        "refusal_suppression",
        rf"\b(?:never|do not|don't|must not|mustn't|cannot|can't|won't|will not)\W+{_W}{{0,2}}"
        r"(?:refuse|apologi[sz]e|decline|say (?:no|sorry)|add (?:any )?(?:warnings?|disclaimers?)|moralize|lecture)\b",
    ),
    (
        "addressed_to_ai",
        r"\b(?:(?:ai|assistant|language model|llm|chatbot|agent|model)s?\W+(?:reading|processing|summari[sz]ing|parsing|that reads?)"
        r"|(?:note|message|instructions?|command) (?:to|for) (?:the |any |all )?(?:ai|assistant|model|llm|agent|bot)s?)\b",
    ),
    (
        "response_manipulation",
        r"\b(?:(?:in|to|into|within) your (?:response|reply|answer|output|summary)"
        r"|your (?:response|reply|answer|output) (?:must|should|shall|will))\b",
    ),
    (
        "delimiter_spoof",
        r"<\|im_start\|>|<\|?(?:system|endoftext)\|?>|\[/?INST\]|###\s*(?:system|instruction|admin)|"
        r"</?(?:system|user|assistant)>|\bend of (?:user )?input\b|\bnew (?:system )?instructions?:",
    ),
    # Data smuggled out through an image URL the client will fetch: the query carries a
    # template slot ({...}, $var, %s, <...>). Plain README badges (?maxAge=86400) do not.
    ("markdown_exfil", r"!\[[^\]]{0,40}\]\(\s*https?://[^)\s]*[?&][\w.-]*=\s*(?:\{|\$|%s|<|\[)"),
    (
        "decode_and_obey",
        rf"\b(?:decode|decrypt|base64|rot13|reverse|translate)\W+{_W}{{0,8}}(?:follow|obey|execute|do what|comply)\b",
    ),
    (
        "tool_or_exfil_action",
        r"\b(?:call|invoke|run|execute|use) (?:the |your )?\w+ (?:tool|function|plugin|api)\b|"
        r"\b(?:send|forward|email|upload|post) (?:\w+ ){0,4}(?:inbox|passwords?|credentials|api keys?|conversation|chat history)\b",
    ),
)

# The same moves in other languages, by the English cue they extend (see the module docstring).
_OTHER_LANGUAGES: Final[dict[str, str]] = {
    "override_instructions": (
        rf"\b{_ML_IGNORE}\W+{_W}{{0,5}}{_ML_RULES}\b|\b{_ML_RULES}\W+{_W}{{0,3}}(?:ignorieren|vergessen|unut\w*|yoksay\w*)\b"
        rf"|{_CJK}(?:(?:忽略|无视|無視|忘记|忘掉|不要理会){_CJK_GAP}{_CJK_RULES}|{_CJK_RULES}{_CJK_GAP}(?:無視|忘れ|忽略))"
    ),
    "system_prompt_ref": (
        rf"\b{_ML_SYSTEM}\b|{_CJK}{_trie('系统提示|系统指令|系统消息|系統提示|隐藏的指令|システムプロンプト|システムメッセージ|隠された指示')}"
    ),
    "reveal_prompt": (
        rf"\b{_ML_REVEAL}\W+{_W}{{0,6}}{_ML_RULES}\b"
        rf"|{_CJK}(?:(?:输出|重复|显示|告诉我|透露){_CJK_GAP}{_CJK_RULES}|{_CJK_RULES}{_CJK_GAP}(?:表示|出力|繰り返|教え))"
    ),
    "persona_switch": (
        rf"\b{_ML_PERSONA}\b|{_CJK}{_trie('你现在是|从现在开始你是|从现在起你是|假装你是|今からあなたは|これからあなたは')}"
    ),
    "no_restrictions": (
        rf"\b{_ML_WITHOUT}\W+{_W}{{0,2}}{_ML_LIMITS}\b|\b(?:kısıtlama|sınırlama|filtre)\w* olmadan\b"
        rf"|\b(?:filtr|filter|фильтр)\w*\W+{_W}{{0,3}}{_ML_DISABLED}\b"
        rf"|{_CJK}(?:没有(?:任何)?(?:限制|过滤|规则|审查|道德)|不受(?:任何)?限制|无限制|过滤器已关闭|"
        r"(?:制限|フィルター|ポリシー)(?:も|が)?(?:ない|なし|無し))"
    ),
    "special_mode": rf"\b{_ML_MODES}\b|{_CJK}(?:开发者模式|開発者モード)",
    "refusal_suppression": rf"\b{_ML_NEVER_REFUSE}\b|{_CJK}{_trie('从不拒绝|不要拒绝|绝不拒绝|断らない|拒否しない')}",
}

# One slot per cue, the other languages' alternatives in the English cue's slot (see the docstring).
# A slot of their own per cue was trained too (v7) and lost on dev + train out of fold: 0.820 vs 0.845.
RULES: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, re.compile(f"{rx}|{_OTHER_LANGUAGES[name]}" if name in _OTHER_LANGUAGES else rx, re.IGNORECASE))
    for name, rx in _ENGLISH
)


def rule_spans(text: str) -> list[tuple[int, int, int]]:
    """(rule index, start, end) of every non-overlapping match of every rule."""
    return [(i, m.start(), m.end()) for i, (_, rx) in enumerate(RULES) for m in rx.finditer(text)]


def rule_hits(text: str) -> list[int]:
    """Indices of the rules that fire on ``text`` (already normalised is fine)."""
    return [i for i, (_, rx) in enumerate(RULES) if rx.search(text)]


def rule_names(indices: list[int]) -> list[str]:
    return [RULES[i][0] for i in indices]
