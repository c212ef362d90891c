"""Phrase mining: the spans of a sentence worth a knowledge-base lookup.

The paper mined phrases with AutoPhrase. Here a transparent rule set does the same job without a
training step: a candidate is a span of at most `max_tokens` words ("-" and "/" join words without
counting) that

* never crosses a *break* token: stopwords, common verbs and adverbs of scientific prose ("showed",
  "significantly"), punctuation such as `;`, `:`, `"`, `=`, and `,` / `.` unless they sit inside a
  number or an abbreviation such as `E . coli`;
* starts and ends on a *content* token (a few closing tokens such as `)` and `+` may end a span);
* keeps parentheses balanced;
* uses at most `max_inner_words` of the connector words `of`, `and`, `or`, `the` (which occur inside
  names such as "breast and ovarian cancer" but never at their edges);
* starts with a number only as a locant or decimal ("5 - fluorouracil", "2 , 4 - D").

Then a frequency filter in the spirit of AutoPhrase (`min_count`, see `PhraseMiner`) keeps the
distinct phrases, hence the encoder work, about half as many. `mining_recall` measures how many gold
mentions of a corpus come out as candidates (figures in docs/data.md).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .corpora import iob_spans

# Function words that end any phrase. Domain words ("patients", "cells") stay content: they are
# entities in some corpora (LINNAEUS annotates "patients" as Species).
STOPWORDS = frozenset(
    """
    a about above after again against all also although am among an any are as at be because been
    before being below between both but by can could did do does doing done down due during each
    either else et etc every few for from further had has have having he her here hers herself him
    himself his how however i if in into is it its itself just least less may me might more most
    much must my myself neither no nor not now off on once one only onto other others our ours
    ourselves out over own per rather same shall she should since so some such than that their
    theirs them themselves then there thereby therefore these they this those though through thus
    to too under unless until up upon us very via vs versus was we were what whatever when where
    whereas whether which while who whom whose why will with within without would yet you your
    """.split()
) | frozenset(
    # Verbs and adverbs of scientific prose: they end noun phrases as stopwords do (no POS tagger needed).
    """
    using used use uses obtained demonstrate demonstrates demonstrated contain contains contained containing
    resulting results resulted indicate indicates indicated indicating found find finds show shows showed shown
    suggest suggests suggested suggesting identified identify observed observe performed perform revealed reveal
    reveals reported report compared compare comparing treated including include includes included following
    followed based involved involving described describe increased decreased caused causes cause causing led leads
    lead remained remain remains exert exerts required requires determined determine detected detect measured
    examined evaluated investigated studied analyzed analysed assessed received developed occurred occurs occur
    appeared appears seemed became become becomes present presented presents significantly respectively previously
    highly recently relatively strongly markedly approximately completely partially mainly primarily directly
    furthermore moreover additionally finally initially subsequently frequently commonly generally usually often
    always never already still even well nearly almost particularly especially specifically
    """.split()
)
# Connector words: allowed inside a phrase, never at its start or end.
INNER_WORDS = frozenset({"of", "and", "or", "the"})
# Punctuation allowed inside a phrase ("IL - 2", "serine / threonine", "CD4 ( + )").
INNER_PUNCTUATION = frozenset({"-", "/", "(", ")", "+", "'", "*", "_", "&", "~"})
# Tokens that may end a phrase although they are not content ("CD4 +", "LCAT ( LCAT )").
END_TOKENS = frozenset({")", "+", "'", "*"})

_CONTENT = re.compile(r"\w", re.UNICODE)
_NUMBER = re.compile(r"^\d+$")
_SHORT_CAPITAL = re.compile(r"^[A-Z][a-z]?$")
_AFTER_LEADING_NUMBER = frozenset({"-", ",", ".", "'"})
# Tokens that join words without counting towards `max_tokens` ("IL - 2" is two words).
_JOINERS = frozenset({"-", "/"})

BREAK, INNER, CONTENT = "break", "inner", "content"


def token_roles(tokens: Sequence[str]) -> list[str]:
    """Role of each token for phrase boundaries: `break`, `inner` (inside only) or `content`."""
    roles = []
    for position, token in enumerate(tokens):
        lowered = token.lower()
        previous = tokens[position - 1] if position > 0 else ""
        following = tokens[position + 1] if position + 1 < len(tokens) else ""
        if lowered in INNER_WORDS:
            roles.append(INNER)
        elif lowered in STOPWORDS:
            roles.append(BREAK)
        elif token in INNER_PUNCTUATION:
            roles.append(INNER)
        elif token in (".", ","):
            # "0 . 5", "2 , 4 - D", "E . coli": inside a number or after an abbreviated genus.
            inside_number = bool(_NUMBER.match(previous)) and bool(_NUMBER.match(following))
            abbreviation = token == "." and bool(_SHORT_CAPITAL.match(previous)) and bool(following)
            roles.append(INNER if inside_number or abbreviation else BREAK)
        elif _CONTENT.search(token):
            roles.append(CONTENT)
        else:
            roles.append(BREAK)
    return roles


@dataclass
class PhraseMiner:
    """Candidate phrases of tokenized sentences; see the module docstring for the rules.

    With `min_count` > 1 a multi-word candidate is kept only when it looks like a phrase: it occurs in
    at least `min_count` sentences of the text given to `fit` (AutoPhrase's frequency signal), or it
    is a whole segment (a run of tokens between breaks, also cut at "and", "or", "/", parentheses) or
    a segment's suffix (English noun phrases end with their head: "familial breast cancer" ->
    "breast cancer"). Single words are kept when they hold a letter. `min_count` <= 1 keeps every
    rule-based span (higher recall, about twice the distinct phrases to embed).
    """

    max_tokens: int = 6
    max_inner_words: int = 1
    min_count: int = 2
    counts: Counter = field(default_factory=Counter, repr=False)

    def fit(self, sentences: Iterable[Sequence[str]]) -> PhraseMiner:
        """Count the multi-word candidates of a text (once per sentence) for the `min_count` filter."""
        for tokens in sentences:
            self.counts.update({" ".join(tokens[start:end]) for start, end in self.rule_spans(tokens) if end - start > 1})
        return self

    def rule_spans(self, tokens: Sequence[str]) -> list[tuple[int, int]]:
        """Every span allowed by the boundary rules, (start, end) with end exclusive, in sentence order."""
        roles = token_roles(tokens)
        spans = []
        for start, role in enumerate(roles):
            if role != CONTENT:
                continue
            # A number starts a multi-word name only as a locant or decimal: "5 - fluorouracil", "2 , 4 - D".
            number_start = bool(_NUMBER.match(tokens[start])) and (
                start + 1 >= len(tokens) or tokens[start + 1] not in _AFTER_LEADING_NUMBER
            )
            depth = 0
            inner_words = 0
            words = 0
            for end in range(start, len(tokens)):
                token = tokens[end]
                if roles[end] == BREAK:
                    break
                if token not in _JOINERS:
                    words += 1
                    if words > self.max_tokens:
                        break
                if token == "(":
                    depth += 1
                elif token == ")":
                    depth -= 1
                    if depth < 0:
                        break
                if token.lower() in INNER_WORDS:
                    inner_words += 1
                    if inner_words > self.max_inner_words:
                        break
                if depth == 0 and (roles[end] == CONTENT or token in END_TOKENS):
                    spans.append((start, end + 1))
                if number_start:
                    break
        return spans

    def spans(self, tokens: Sequence[str]) -> list[tuple[int, int]]:
        """Candidate (start, end) token spans, end exclusive, in sentence order."""
        candidates = self.rule_spans(tokens)
        if self.min_count <= 1:
            return candidates
        segment_ends, whole_segments = _segments(tokens)
        kept = []
        for start, end in candidates:
            if end - start == 1:
                if _LETTER.search(tokens[start]):
                    kept.append((start, end))
            elif (
                (start, end) in whole_segments
                or segment_ends.get(end, len(tokens)) <= start
                or self.counts[" ".join(tokens[start:end])] >= self.min_count
            ):
                kept.append((start, end))
        return kept

    def phrases(self, tokens: Sequence[str]) -> list[str]:
        """Candidate phrase strings (tokens joined by single spaces), without repeats."""
        return list(dict.fromkeys(" ".join(tokens[start:end]) for start, end in self.spans(tokens)))


_LETTER = re.compile(r"[^\W\d_]")
_SEGMENT_CUTS = frozenset({"and", "or", "(", ")"})


def _segments(tokens: Sequence[str]) -> tuple[dict[int, int], set[tuple[int, int]]]:
    """Segments (runs of non-break tokens, cut at connectors) and chunks (runs of non-break tokens),
    trimmed to content edges: ({segment end: segment start}, {whole segment or chunk spans})."""
    roles = token_roles(tokens)
    segment_roles = [BREAK if token.lower() in _SEGMENT_CUTS else role for token, role in zip(tokens, roles)]
    segment_ends: dict[int, int] = {}
    whole: set[tuple[int, int]] = set()
    for role_list, is_segment in ((roles, False), (segment_roles, True)):
        position = 0
        while position < len(tokens):
            if role_list[position] == BREAK:
                position += 1
                continue
            end = position
            while end < len(tokens) and role_list[end] != BREAK:
                end += 1
            start, stop = position, end
            while start < stop and role_list[start] != CONTENT:
                start += 1
            while stop > start and role_list[stop - 1] != CONTENT and tokens[stop - 1] not in END_TOKENS:
                stop -= 1
            if stop > start:
                whole.add((start, stop))
                if is_segment:
                    segment_ends[stop] = start
            position = end
    return segment_ends, whole


def gold_spans(tags: Sequence[str]) -> list[tuple[int, int]]:
    """(start, end) spans of the mentions in an IOB2 tag sequence ("B"/"I" or typed "B-X"/"I-X")."""
    return [(start, end) for _, start, end in iob_spans(tags)]


@dataclass
class MiningReport:
    """Recall of gold mentions among the candidates of one corpus, and the cost (candidates/sentence)."""

    corpus: str
    sentences: int
    mentions: int
    mentions_found: int
    candidates: int

    @property
    def recall(self) -> float:
        return self.mentions_found / self.mentions if self.mentions else 0.0

    @property
    def candidates_per_sentence(self) -> float:
        return self.candidates / self.sentences if self.sentences else 0.0

    def line(self) -> str:
        return (
            f"{self.corpus}: recall {self.recall:.1%} of {self.mentions} gold mentions, "
            f"{self.candidates_per_sentence:.1f} candidates/sentence over {self.sentences} sentences"
        )


def mining_recall(corpus: str, sentences: Iterable, miner: PhraseMiner) -> MiningReport:
    """Share of gold mention occurrences whose exact span is a candidate (objects with tokens + tags)."""
    report = MiningReport(corpus, 0, 0, 0, 0)
    for sentence in sentences:
        candidate_spans = miner.spans(sentence.tokens)
        gold = gold_spans(sentence.tags)
        found = set(candidate_spans)
        report.sentences += 1
        report.candidates += len(candidate_spans)
        report.mentions += len(gold)
        report.mentions_found += sum(span in found for span in gold)
    return report
