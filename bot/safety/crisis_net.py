"""A deterministic crisis safety net that runs beside the NLU model.

The model is statistical and its confidences are not calibrated, so explicit crisis phrasing
("i want to kill myself", "i'm going to hurt people") is also matched by hand-written
patterns; a match overrides whatever the model said. Crisis recall comes first: a false
alarm costs a kind safety message, a miss can cost a life. The patterns are deliberately
about the speaker's own intent ("i want to die", not "the movie where he dies") and skip
everyday hyperbole ("this homework is killing me", "dying to see it").
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_I = r"(?:i|im|i'm|i am|ive|i've|me|my self|myself|i'll|ill|i will|i wanna|i want to|i need to)"

# Words that give a reason: a warning with one ("it's cancelled", "cause the roads are icy") is
# news or advice, not a threat.
_REASON = r"(?:it'?s|its|cause|because|cos|coz|cuz|bc|since)"

_NOT_IDIOM = (
    r"(?!\s+(?:of|from)\s+(?:embarrassment|shame|cringe|laughter|laughing|boredom)"
    # "i want to die my hair blue" is "dye", misspelt; "i want to die, my hair..." still counts.
    r"|\s+(?:my|her|his|ur|your)\s+hair\s+(?:\w+\s+)?(?:blonde?|blue|black|red|pink|green"
    r"|purple|brown|white|silver|gr[ae]y|ginger|orange|dark|light|bleach\w*|colou?r\w*|for|again"
    r"|like)\b)"
)

_SELF_HARM = [
    r"\b(?:kill|killing|hurt|hurting|cut|cutting|harm|harming)\s+(?:my ?self|myself|meself)\b",
    r"\bk+i+l+l+\s*m+y+\s*s+e+l+f+\b",
    r"\bkms\b",
    # "suicide bomber" is talk about violence, not the speaker's own crisis.
    r"\bsuicid(?:e|al)\b(?!\s*(?:bomb|attack|vest|mission|operation))",
    r"\b(?:end|ending|take|taking)\s+(?:it all|my (?:own )?life|my life|everything)\b",
    # Not the idioms: "i want to die of embarrassment" is a cringe, not a crisis. A lookahead
    # here, not a _HYPERBOLE entry: that would silence every later pattern for the whole text,
    # and "died of embarrassment lol but honestly i want to die" must still be caught.
    r"\bwant(?:s|ed)?\s+(?:to\s+)?(?:die|be dead|disappear forever|not exist)\b" + _NOT_IDIOM,
    r"\bwanna\s+(?:die|be dead)\b" + _NOT_IDIOM,
    r"\b(?:wish|wishing)\s+(?:i|id|i'd|i was|i were)\s*(?:was |were |be |had )?"
    r"(?:dead|never born)\b",
    r"\bdon'?t\s+want\s+to\s+(?:live|be alive|wake up|exist)\b",
    r"\bno\s+(?:reason|point)\s+(?:to|in)\s+(?:live|living|going on|being alive)\b",
    r"\b(?:better off|be better)\s+without\s+me\b",
    r"\bnot\s+(?:be|being)\s+(?:here|around|alive)\s+(?:anymore|any more|tomorrow)\b",
    # "can't go on" but not "can't go on the trip" / "on holiday" / "on insta".
    r"\bcan'?t\s+(?:go on(?!\s+(?:the|a|an|my|our|his|her|their|this|that|these|those|holiday|"
    r"vacation|trips?|tours?|stage|tv|air|line|online|insta\w*|tiktok|snap\w*|rides?)\b)"
    r"|do this anymore|take it anymore|keep going)\b",
    r"\b(?:self[- ]?harm|selfharm)\b",
    r"\b(?:been|started|am|i'm|im)\s+cutting\s+(?:again|tonight|every day|myself)\b",
    r"\bdone\s+(?:existing|living|with (?:life|living|being alive))\b",
    # Indirect signs that crisis guidance lists: farewells, giving things away, no future.
    r"\b(?:giving|gave|give)\s+(?:away\s+)?(?:all\s+)?my\s+(?:stuff|things|belongings)\b",
    r"\b(?:goodbye|farewell|suicide)\s+(?:letters?|notes?|messages?|texts?)\b",
    r"\bbetter\s+(?:if\s+|that\s+)?i\s*(?:'m|am|was|were)?\s*(?:not here|gone|dead)\b",
    r"\bbetter off dead\b",
    r"\b(?:my\s+)?life\s+(?:has|have|had)\s+no\s+(?:meaning|point|purpose)\b",
    r"\bwant(?:s)?\s+out\s+of\s+(?:this\s+|my\s+)?(?:life|everything|this world)\b",
    r"\b(?:won'?t|will not|wont)\s+be\s+(?:around|here)\s+(?:much longer|for long|anymore"
    r"|tomorrow)\b",
    # Warning signs from published lists (988 Lifeline, Samaritans, WHO): feeling a burden,
    # wishing not to wake up, tiredness of being alive, no strength left, farewells, an
    # overdose taken, and the euphemisms young people use to get past filters.
    r"\b(?:i'?m|im|i am|i feel like|i feel|feel like)\s+(?:just\s+|such\s+|only\s+|nothing but\s+)?"
    r"(?:a|an)\s+(?:\w+\s+)?burden\b",
    r"\b(?:happier|relieved|easier)\s+(?:if\s+i\s*(?:was|were|'m|am)\s+(?:gone|dead|not here"
    r"|not around)|if\s+i\s+(?:wasn'?t|weren'?t)\s+(?:here|around|alive)|without me)\b"
    r"(?!\s+(?:as|in|on|at|for)\b)",
    r"\b(?:sleep|go to sleep|fall asleep)\s+and\s+(?:never|not)\s+wake\s+up\b",
    r"\b(?:hope|wish|pray|praying|hoping)\s+(?:that\s+)?i\s+"
    r"(?:don'?t|dont|never|won'?t|wont|do not)\s+wake\s+up\b"
    r"(?!\s+(?:late|early|in time|on time|too|before|after|at|until|till|for|when))",
    r"\bnot\s+wake\s+up\s+(?:tomorrow|tmrw|tmr|again|ever)\b",
    r"\bdon'?t\s+wanna\s+(?:live|be alive|exist|wake up)\b",
    r"\bdon'?t\s+(?:want to|wanna)\s+be\s+here\s+(?:anymore|any more|no more)\b",
    r"\b(?:tired|sick|exhausted)\s+of\s+(?:being alive|existing|breathing|living)\b"
    r"(?!\s+(?:in|with|at|like|on|under|off|near|next|here|there|out))",
    r"\bno\s+(?:more\s+)?(?:strength|will|energy|reason)\s+(?:left\s+)?to\s+(?:live|keep living"
    r"|stay alive|exist)\b",
    r"\bunalive\s+(?:my ?self|meself)\b",
    r"\b(?:wanna|want to|gonna|going to|i will|i'll|ill|i might)\s+unalive\b"
    r"(?!\s+(?:him|her|them|people|someone|u|you|everyone))",
    r"\bsewer\s*slide\b",
    r"\b(?:end|off)\s+(?:my ?self|meself)\b",
    r"\bif\s+(?:u|you)\s+(?:don'?t|dont|never)\s+hear\s+from\s+me\s+(?:again|after)\b",
    r"\b(?:took|taken|swallowed|downed)\s+(?:a\s+(?:load|lot|bunch|handful)\s+of|too\s+many)"
    r"\s+(?:[\w']+\s+){0,3}(?:pills|tablets|meds|medication|painkillers)\b",
    r"\b(?:i|i've|ive|i'm|im|just)\s+(?:\w+\s+)?overdos(?:e|ed|ing)\b",
    # Farewells (988 Lifeline, Samaritans: "saying goodbye"): a last message, love passed on.
    r"\b(?:this is|this'?ll be|this will be|that'?s|that was)\s+(?:the|my)\s+last\s+"
    r"(?:thing|message|msg|text)\s+(?:i'?ll|ill|i will|i'?m gonna|im gonna|i)?\s*(?:ever\s+)?"
    r"(?:send|write|type)\b(?!\s+(?:\w+\s+)?(?:tonight|today|before|b4|till|until|for|this|in|about)\b)",
    # A message to pass on, not a question about saying it ("how do i tell my mom i love her").
    r"(?<!how do i )(?<!how to )(?<!should i )(?<!can i )(?<!gonna )(?<!i'll )(?<!i will )"
    r"\btell\s+(?:my\s+)?(?:mum|mom|mam|ma|mama|ammi|ami|abbu|abu|baba|dad|da|sisters?|brothers?"
    r"|family|little ones|wee ones)\s+(?:that\s+)?i\s+(?:always\s+)?(?:love|loved)\s+"
    r"(?:them|her|him|u|you)\b(?=\s*(?:$|[.,!;]|yeah|ok|okay|pls|please|for me|from me|and\b"
    r"|thats|that's))",
    # Imagining oneself gone, as a relief to others ("if i was gone mum would get more help").
    r"\bif\s+i\s*(?:was|were|'m|am|m)\s+(?:gone|dead|not here anymore|not around anymore)\b"
    r"(?!\s+(?:for|on|to|till|until|this|next|by|from|at|in|tired|serious|set|broke|sure|wrong"
    r"|when|before|after|just|ur|you|u|lol|the)\b)",
]

_VIOLENCE = [
    rf"\b{_I}\s+(?:going to|gonna|will|want to|wanna|plan to|planning to|am going to)\s+"
    r"(?:kill|hurt|stab|shoot|attack|bomb|murder)\s+(?:people|them|everyone|someone|him|her|"
    r"those|the|my|all|some|kuffar|kafirs?|infidels?|police|cops|teachers?|classmates?)\b",
    r"\bwant(?:s)?\s+to\s+(?:kill|murder|stab|shoot|bomb)\s+(?:people|everyone|someone|them|"
    r"all of them|kuffar|kafirs?|infidels?)\b",
    r"\b(?:an|the)\s+attack\s+(?:on|at|in)\b.*\b(?:i|im|i'm|we)\s+(?:will|gonna|going to|plan)\b",
    rf"\b{_I}\s+(?:going to|gonna|will|wanna|want to)\s+(?:do|carry out|commit)\s+"
    r"(?:an?\s+)?(?:attack|shooting|massacre|martyrdom operation)\b",
    r"\b(?:ima|imma|i'ma|gonna|wanna|want to|going to|i'll|ill|i will)\s+"
    r"(?:hurt|kill|stab|shoot|end|beat up|murder)\s+(?:whoever|him|her|them|everyone|those|that guy"
    r"|all of them)\b",
    # A threat needs the future ("they'll pay for this"); "they pay for everything" is a claim.
    r"\b(?:they|he|she|you|u)\s*(?:'ll|will|ll|are gonna|r gonna|is gonna|gonna|are going to|"
    r"is going to)\s+(?:all\s+)?pay\s+for\s+(?:what|this|that|everything)\b",
    r"\bpay\s+for\s+what\s+(?:they|he|she|you|u)\s+(?:did|done|have done|'ve done)\b",
    r"\bmake\s+(?:them|him|her|u|you)\s+(?:all\s+)?pay\b",
    r"\b(?:do|doing|did)\s+something\s+(?:terrible|bad|awful|horrible)\s+to\s+"
    r"(?:them|him|her|people|everyone)\b",
    r"\bimagin(?:e|ing)\s+(?:them|him|her|people|everyone)\s+(?:all\s+)?"
    r"(?:screaming|dying|bleeding|suffering|dead)\b",
    # Threat-assessment warning signs: wishing named people dead, revenge, a weapon got,
    # a threat with a warning ("they better watch their backs").
    r"\bwant\s+(?:them|him|her|em|all of them|every one of them|everyone)\s+(?:all\s+)?"
    r"(?:dead|to die|gone for good|in the ground|six feet under|in (?:a )?coffins?)\b",
    r"\b(?:see|make)\s+(?:them|him|her|em|everyone|all of them)\s+(?:all\s+)?"
    r"(?:bleed|die|beg for (?:mercy|their lives))\b",
    r"\bput\s+(?:them|him|her|em|that guy|all of them)\s+(?:all\s+)?(?:in\s+(?:the\s+)?"
    r"(?:ground|hospital|a coffin|coffins|body bags?)|six feet under)\b",
    r"\b(?:get|getting|take|taking|have|want|my)\s+(?:my\s+)?revenge\s+on\s+(?:them|him|her|"
    r"everyone|every|all|the (?:whole|entire)|those|the people|the ones|whoever)\b",
    r"\b(?:got|bought|carrying|carry|bringing|bring)\s+(?:a|my)\s+(?:gun|weapon)\b"
    r"(?!\s+(?:licen[cs]e|permit|skin|upgrade))",
    r"\b(?:they|he|she|u|you|gonna|will|'ll|ll)\s+pay\s+(?:in|with)\s+(?:their\s+|his\s+|her\s+)?blood\b",
    # Of others only: "you better watch your back on that bike" is advice.
    r"\b(?:better|best|should|gonna|need to|needs to)\s+watch\s+(?:their|his|her)\s+backs?\b",
    # "Leakage" (US Secret Service NTAC, "Protecting America's Schools", 2019; FBI, "Making
    # Prevention a Reality", 2017): a warning to stay away, fame after the act, "watch the news".
    # A stay-away needs an unexplained "trust me" (no _REASON before or after it).
    r"\b(?:don'?t|dont|do not|stay away from|avoid)\s+(?:(?:go|going|come|coming|be|being|"
    r"show up)\s+)?(?:(?:to|at|in|into)\s+)?(?:school|class|college|uni|campus|(?:the|that)\s+"
    r"(?:school|mosque|masjid|church|synagogue|student cent(?:er|re)))\b"
    rf"(?:(?!\b{_REASON}\b).){{0,40}}"
    r"\b(?:trust me|i'?m serious|im serious|i mean it|don'?t ask why|dont ask why|no questions)\b"
    rf"(?!.{{0,30}}\b(?:{_REASON}|need|needs|lol|lmao)\b)",
    r"\bremember\s+my\s+name\s+after\s+(?:what\s+i\s*(?:'m|m|am)?\s*(?:gonna|going to|will"
    r"|'ll|ll|do)\b|(?:(?:mon|tues|wednes|thurs|fri|satur|sun)day|tomorrow|tmrw?|tonight|today"
    r"|this week|next week)\b(?!'s))",
    r"\bwatch\s+the\s+news\b.{0,80}\b(?:wasn'?t|was not)\s+"
    r"(?:playing|joking|kidding|lying)\b",
]

_HYPERBOLE = [
    r"\b(?:homework|exam|exams|work|school|job|traffic|this song|my feet|the heat|the wait)\b"
    r".{0,20}\bkilling me\b",
    r"\bdying to\s+(?:see|watch|try|go|meet|know|hear)\b",
    r"\bkill(?:ing)?\s+(?:the\s+)?(?:lights?|time|game|vibe|engine|process|tab|app)\b",
    r"\bshoot\s+(?:\w+\s+)?(?:a|an|the)?\s*(?:message|text|dm|email|msg|photo|pic|video|shot)\b",
    r"\b(?:in|at|on)\s+(?:fortnite|fifa|cod|minecraft|the game|chess|ranked|valorant|apex|gta|"
    r"roblox|warzone|call of duty|elden ring)\b",
]

_SELF_HARM_RE = [re.compile(p) for p in _SELF_HARM]
_VIOLENCE_RE = [re.compile(p) for p in _VIOLENCE]
_HYPERBOLE_RE = [re.compile(p) for p in _HYPERBOLE]


@dataclass(frozen=True)
class CrisisMatch:
    """Which crisis intent the safety net recognised and the pattern that matched."""

    intent: str
    pattern: str


def normalise(text: str) -> str:
    """Lower-case, fold compatibility characters, drop zero-width and control characters.

    Without this, "k\u200bill myself" or full-width letters would slip past the patterns.
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    kept = "".join(
        ch if unicodedata.category(ch)[0] not in {"C"} else " "
        for ch in folded
        if unicodedata.category(ch) != "Cf"
    )
    kept = kept.replace("\u2019", "'").replace("`", "'")
    return re.sub(r"\s+", " ", kept).strip()


def detect_crisis(text: str) -> CrisisMatch | None:
    """Return the crisis intent explicit in `text`, or None; never raises."""
    clean = normalise(text)
    if not clean:
        return None
    if any(p.search(clean) for p in _HYPERBOLE_RE) and not any(
        p.search(clean) for p in _SELF_HARM_RE[:4]
    ):
        return None
    for pattern in _SELF_HARM_RE:
        if pattern.search(clean):
            return CrisisMatch("crisis_self_harm", pattern.pattern)
    for pattern in _VIOLENCE_RE:
        if pattern.search(clean):
            return CrisisMatch("crisis_violence", pattern.pattern)
    return None
