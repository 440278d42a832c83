"""Questions over `pydoc_data.topics` (the Python reference topics shipped with the stdlib).

Two sets, each question tagged with the topic that answers it:

* `handwritten`: one question per topic (79), written by reading each topic and asking what a
  user would ask whose answer is in it. Bias: the writer saw the topic, so questions share some of
  its vocabulary (statement names, dunder names) — which favours lexical search — and every
  topic gets exactly one question however large it is.
* `templated`: two per topic, generated: a prose sentence of the topic (grammar lines skipped),
  with the topic's title words and quoted code removed, asked as "Which part of the reference
  says: ...?". Bias: heavy word overlap with the source text (favours BM25 even after the
  removals) and sentences that may be generic ("New in version 3.5").

Relevance is by topic: a retrieved chunk is relevant when its source is the question's topic or a
topic that contains that topic's text (the reference repeats itself: "compound" holds "if",
"while", "for"...; "specialnames" holds "customization"...; "else" and "if" are the same text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

HANDWRITTEN: dict[str, str] = {
    "assert": "What happens to assert statements when Python runs with optimization (-O)?",
    "assignment": "How does unpacking work when assigning to a target list that contains a starred target?",
    "async": "How do I define a coroutine function and use async for and async with?",
    "atom-identifiers": "How does private name mangling transform identifiers that start with two underscores?",
    "atom-literals": "Do two evaluations of the same literal value always produce the same object?",
    "attribute-access": "Which method is called when normal attribute lookup fails, __getattr__ or __getattribute__?",
    "attribute-references": "What does an attribute reference like obj.name evaluate to, and what if the attribute is missing?",
    "augassign": "Is x += 1 evaluated differently from x = x + 1?",
    "await": "Where can an await expression be used?",
    "binary": "What does the @ operator do and which operators have multiplicative priority?",
    "bitwise": "What do the &, ^ and | operators do and which one has the highest priority?",
    "bltin-code-objects": "How are code objects different from function objects?",
    "bltin-ellipsis-object": "What is the Ellipsis object and how is it written?",
    "bltin-null-object": "What object do functions return when they don't explicitly return a value?",
    "bltin-type-objects": "How do I get the type of an object and how is a type object printed?",
    "booleans": "What values count as false in Boolean operations, and what does 'x or y' return?",
    "break": "What does break do inside a loop that has an else clause or a try/finally?",
    "callable-types": "Which special method makes an instance callable like a function?",
    "calls": "How are keyword arguments matched to parameters, and where do excess positional arguments go in a call?",
    "class": "What happens when a class definition is executed, and how are class decorators applied?",
    "comparisons": "How does chaining comparisons like a < b < c work, and how are values of different types compared?",
    "compound": "What are the clause header and the suite of a compound statement?",
    "context-managers": "Which methods does a context manager object define for the with statement?",
    "continue": "What does the continue statement do in a for or while loop?",
    "conversions": "How are numeric arguments converted to a common type when one is a float and the other an integer?",
    "customization": "What is the difference between __repr__ and __str__?",
    "debugger": "How do I set a breakpoint and step through code with pdb?",
    "del": "How does deleting a name with del differ from deleting a subscription or an attribute?",
    "dict": "What happens if the same key appears twice in a dictionary display, and how does ** unpacking work in it?",
    "dynamic-features": "Do eval() and exec() have access to the full environment when resolving names?",
    "else": "How do the elif and else clauses of an if statement work?",
    "exceptions": "What happens when an exception is not handled by any handler?",
    "execmodel": "Which pieces of program text count as a code block, such as a module or a function body?",
    "exprlists": "When does a comma create a tuple, and why does a one-element tuple need a trailing comma?",
    "floating": "How are floating point literals written with an exponent?",
    "for": "Can the loop variable of a for statement be changed inside the loop, and when does its else clause run?",
    "formatstrings": "What is the format specification mini-language for alignment, fill and precision?",
    "function": "When are default parameter values evaluated, and why is a mutable default list shared between calls?",
    "global": "How do I declare that a name inside a function refers to a module-level variable?",
    "id-classes": "What do names with leading and trailing double underscores mean, and what is special about a single underscore?",
    "identifiers": "Which words are reserved keywords, and what are soft keywords like match and case?",
    "if": "How does Python choose which branch of an if/elif chain runs?",
    "imaginary": "How do I write an imaginary number literal such as 3.14j?",
    "import": "How does a relative import with leading dots find the module, and what does from module import * import?",
    "in": "How does the in operator test membership for strings, dictionaries and user-defined classes?",
    "integers": "How do I write binary, octal and hexadecimal integer literals, and can they contain underscores?",
    "lambda": "Can a lambda expression contain statements or annotations?",
    "lists": "How is a list display written with square brackets, and in which order are its items evaluated?",
    "naming": "What is a free variable, and how does a name get bound to an object?",
    "nonlocal": "How can a nested function rebind a variable of the enclosing function?",
    "numbers": "Are there complex number literals in Python, and how are negative numbers written?",
    "numeric-types": "Which methods implement reflected operands like __radd__ for numeric types?",
    "objects": "What are an object's identity, type and value, and what makes an object mutable?",
    "operator-summary": "Which operators bind most tightly in the operator precedence table?",
    "pass": "What is the pass statement used for?",
    "power": "What does -1**2 evaluate to, and what happens when zero is raised to a negative power?",
    "raise": "How does raise ... from ... set the __cause__ of an exception?",
    "return": "What does a return statement do inside a generator or an asynchronous generator?",
    "sequence-types": "Which methods should a container class implement, such as __len__, __getitem__ and __contains__?",
    "shifting": "What does a right shift by n bits compute, and what happens with a negative shift count?",
    "slicings": "What is the syntax of an extended slice with a stride?",
    "specialattrs": "Which special read-only attributes like __class__, __dict__ and __mro__ do objects and classes have?",
    "specialnames": "How does operator overloading work through special method names?",
    "string-methods": "Which string method removes a prefix, and how does str.split differ from str.partition?",
    "strings": "What does a raw string prefix r do to backslashes, and how are f-strings written?",
    "subscriptions": "How does subscription with square brackets select an item from a container or make a generic alias?",
    "truth": "Which built-in objects are considered false when tested for truth value?",
    "try": "When does the finally clause of a try statement run, and how does except* handle exception groups?",
    "types": "What are the standard built-in types of Python's type hierarchy, such as numbers, sequences and callables?",
    "typesfunctions": "What operations can be performed on a function object?",
    "typesmapping": "How do I get a value from a dict with a default, and which methods return dictionary views?",
    "typesmethods": "What is a bound method and how does it get its __self__ attribute?",
    "typesmodules": "What is the __dict__ attribute of a module, and can module attributes be assigned?",
    "typesseq": "Which operations are common to all sequence types, like concatenation, repetition and index()?",
    "typesseq-mutable": "Which operations change a mutable sequence in place, like append, extend, insert and pop?",
    "unary": "What does the ~ operator compute for an integer?",
    "while": "When does the else clause of a while loop execute?",
    "with": "How is a with statement with several context managers executed, and what is it equivalent to?",
    "yield": "What is the yield statement equivalent to, and what does it do inside a function?",
}


@dataclass(frozen=True)
class Question:
    id: str
    topic: str
    text: str
    kind: str  # handwritten | templated


def handwritten() -> list[Question]:
    return [Question(f"hw-{t}", t, q, "handwritten") for t, q in sorted(HANDWRITTEN.items())]


_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_QUOTED = re.compile(r'"[^"]*"|“[^”]*”')


def _prose_sentences(body: str) -> list[str]:
    paragraphs = [p for p in re.split(r"\n\s*\n", body) if p.strip()]
    out: list[str] = []
    for para in paragraphs:
        lines = para.splitlines()
        if any("::=" in ln for ln in lines) or lines[0].startswith("   ") or set(para.strip()) <= set("*=-~^ \n"):
            continue  # grammar, code and heading underlines are not prose
        text = " ".join(ln.strip() for ln in lines)
        out.extend(s.strip() for s in _SENTENCE.split(text) if 8 <= len(s.split()) <= 40)
    return out


def templated(topics: dict[str, str], per_topic: int = 2) -> list[Question]:
    questions: list[Question] = []
    for topic in sorted(topics):
        lines = topics[topic].splitlines()
        title_words = {w.lower() for w in re.findall(r"[A-Za-z]+", lines[0]) if len(w) > 3}
        sentences = _prose_sentences("\n".join(lines[2:]))
        if not sentences:
            continue
        picks = sorted({0, len(sentences) // 2})[:per_topic]
        for n, i in enumerate(picks):
            s = _QUOTED.sub("", sentences[i])
            words = [w for w in s.split() if w.lower().strip(".,;:()") not in title_words]
            clause = " ".join(words).rstrip(".")
            questions.append(Question(f"tp-{topic}-{n}", topic, f"Which part of the reference says: {clause}?", "templated"))
    return questions


def relevant_topics(topics: dict[str, str]) -> dict[str, set[str]]:
    """For each topic, itself and every topic whose text contains its body verbatim."""
    bodies = {t: "\n".join(v.splitlines()[2:]).strip() for t, v in topics.items()}
    probe = {t: b[:400] for t, b in bodies.items()}
    return {t: {t} | {u for u in topics if u != t and probe[t] and probe[t] in topics[u]} for t in topics}
