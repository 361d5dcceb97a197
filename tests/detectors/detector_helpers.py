"""Builders for posts and streams used by the detector tests."""

from __future__ import annotations

from crisiswatch.detectors.events import Author, EnrichedPost, Post

T0 = 1_700_000_000.0  # a fixed event time origin (2023-11-14T22:13:20Z)


def make_post(
    post_id: str,
    t_s: float,
    *,
    kind: str = "forward",
    root_id: str = "r1",
    brand: str = "acme",
    followers: int = 100,
    verified: bool = False,
    negative: float | None = None,
    complaint: float | None = None,
    text: str = "",
    author: str | None = None,
) -> EnrichedPost:
    post = Post(
        id=post_id,
        created_at_s=t_s,
        text=text,
        kind=kind,  # type: ignore[arg-type]
        parent_id=None if kind == "post" else root_id,
        root_id=post_id if kind == "post" else root_id,
        author=Author(id=author or f"u-{post_id}", followers=followers, verified=verified),
        platform="weibo",
        lang="en",
        url=f"https://example.test/{post_id}",
        sentiment=negative,
        brands=(brand,),
    )
    return EnrichedPost(
        post=post,
        lang="en",
        brands=(brand,),
        own_text=text,
        negative_probability=negative,
        complaint_probability=complaint,
    )


def cascade(
    root_id: str,
    start_s: float,
    n: int,
    per_min: float,
    *,
    brand: str = "acme",
    root_negative: float | None = 0.9,
    root_followers: int = 5000,
    comment_every: int = 0,
    comment_negative: float = 0.9,
    followers: int = 200,
) -> list[EnrichedPost]:
    """A root then n reactions at a steady rate; every `comment_every`-th reaction is a comment with text."""
    posts = [
        make_post(
            root_id,
            start_s,
            kind="post",
            brand=brand,
            followers=root_followers,
            negative=root_negative,
            text="my order never arrived and support ignores me"
            if root_negative
            else "look at our new launch",
        )
    ]
    gap = 60.0 / per_min
    for i in range(n):
        is_comment = comment_every and i % comment_every == 0
        posts.append(
            make_post(
                f"{root_id}-{i}",
                start_s + 1 + i * gap,
                kind="comment" if is_comment else "forward",
                root_id=root_id,
                brand=brand,
                followers=followers,
                negative=comment_negative if is_comment else None,
                text="same here, terrible" if is_comment else "",
            )
        )
    return posts


def timeline_reactions(
    reactions: str,
    *,
    root_id: str = "r",
    start_s: float = T0,
    followers: int = 200,
    comment_negative: float = 0.9,
    big_at: int | None = None,
):
    """An ASCII timeline as posts, one character per minute ('.' none, '1'-'9' that many, '#' 20): yields
    (minute, reactions of that minute); every third reaction is a comment with text, the first reaction of
    minute `big_at` comes from a 2M-follower account."""
    n = 0
    for minute, ch in enumerate(reactions):
        per_min = 0 if ch == "." else 20 if ch == "#" else int(ch)
        posts = []
        for j in range(per_min):
            comment = n % 3 == 0
            posts.append(
                make_post(
                    f"{root_id}-{n}",
                    start_s + minute * 60 + (j + 0.5) * 60 / per_min,
                    kind="comment" if comment else "forward",
                    root_id=root_id,
                    followers=2_000_000 if big_at == minute and j == 0 else followers,
                    negative=comment_negative if comment else None,
                    text="awful" if comment else "",
                )
            )
            n += 1
        yield minute, posts
