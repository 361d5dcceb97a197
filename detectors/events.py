"""The shared vocabulary of crisiswatch: posts as detectors see them, and what detectors conclude.

Plain data, no I/O, no wall clock. `streams/` builds these from Kafka messages or recorded files,
`detectors/` turns them into `Assessment`s, `alerts/` turns assessments into incidents and pages.
Times are event times in epoch seconds (float, UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

PostKind = Literal["post", "forward", "comment"]
Severity = Literal["info", "warning", "critical"]
BrandRole = Literal["own", "competitor"]

POST_KINDS: tuple[str, ...] = ("post", "forward", "comment")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str | None, int] = {None: 0, "info": 1, "warning": 2, "critical": 3}


@dataclass(frozen=True, slots=True)
class Author:
    id: str
    followers: int = 0
    verified: bool = False


@dataclass(frozen=True, slots=True)
class Post:
    """A validated post, exactly as the input contract (README, `streams/post.schema.json`) defines it."""

    id: str
    created_at_s: float
    text: str
    kind: PostKind
    parent_id: str | None
    root_id: str
    author: Author
    platform: str | None = None
    lang: str | None = None
    url: str | None = None
    # Probability that the post is negative, when the producer already knows it.
    sentiment: float | None = None
    # None means "match from text by configured aliases"; reactions inherit their root's brands.
    brands: tuple[str, ...] | None = None

    @property
    def is_root(self) -> bool:
        """The root of its cascade: an original post, or a reaction that names itself as root."""
        return self.kind == "post" or self.id == self.root_id


@dataclass(frozen=True, slots=True)
class EnrichedPost:
    """A post after language, own-text, sentiment, complaint and brand enrichment: what detectors consume."""

    post: Post
    lang: str
    brands: tuple[str, ...]
    # The poster's own words: forwarded chains (`//@user:`, `RT @user:`, `转发微博`) and bare mentions removed.
    own_text: str
    # Probability of negative for the own text; None when there is no own text to judge.
    negative_probability: float | None
    complaint_probability: float | None = None
    category: str | None = None

    @property
    def created_at_s(self) -> float:
        return self.post.created_at_s

    @property
    def has_own_text(self) -> bool:
        return self.negative_probability is not None


@dataclass(frozen=True, slots=True)
class Assessment:
    """One detector's verdict on one key (a cascade or a brand) at one event time.

    `severity` None means "normal": an open incident on this key may resolve. The paging policy decides
    severity; the incident tracker in `alerts/` turns a stream of assessments into firing / updated /
    resolved incident events.
    """

    detector: str  # "forward_surge" | "negative_surge" | "volume_surge"
    brand: str
    root_id: str | None  # the complaint cascade's root, or None for a brand-wide assessment
    severity: Severity | None
    score: float
    event_time_s: float
    explanation: str
    metrics: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    # The post whose arrival made this decision (None for decisions taken when event time advanced).
    post_id: str | None = None


@dataclass(frozen=True, slots=True)
class BrandProfile:
    """A monitored brand, from the `brands` config section (or a default for brands seen in posts)."""

    name: str
    aliases: tuple[str, ...] = ()
    # Terms that veto an alias match (e.g. "apple pie" for a brand "Apple").
    exclude: tuple[str, ...] = ()
    role: BrandRole = "own"
    # IANA zone for the brand's daily and weekly cycles.
    time_zone: str = "UTC"
    # Language the brand's pages are written in ("en" or "zh").
    lang: str = "en"
    # Raw overrides applied over the `detectors` section for this brand only.
    detector_overrides: dict[str, Any] = field(default_factory=dict)
