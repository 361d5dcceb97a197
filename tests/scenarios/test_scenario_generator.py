"""The scenario generator: deterministic, contract-valid, consistent cascades, planted incidents present."""

from __future__ import annotations

import io
import json
import re
import statistics
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import replace
from datetime import datetime
from functools import cache
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crisiswatch.detectors.events import Post
from crisiswatch.detectors.settings import ConfigError
from crisiswatch.streams import scenarios
from crisiswatch.streams.contract import decode_post
from crisiswatch.streams.scenarios import (
    INCIDENT_KINDS,
    BrandSpec,
    GroundTruthIncident,
    IncidentSpec,
    Scenario,
    ScenarioConfig,
    generate,
    preset,
)

REPO = Path(__file__).resolve().parents[2]
CREATED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def seconds(created_at: str) -> float:
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()


@cache
def scenario(name: str, **overrides) -> Scenario:
    return generate(preset(name, **overrides))


@cache
def small_week() -> Scenario:
    """Every incident kind, background thinned so the test stays fast."""
    return generate(preset("week", rate_scale=0.15))


# ------------------------------------------------------------------------------------- determinism


def test_same_seed_gives_identical_output():
    first, second = generate(preset("smoke")), generate(preset("smoke"))
    assert first.posts == second.posts
    assert first.incidents == second.incidents
    assert [json.dumps(p, ensure_ascii=False) for p in first.posts] == [
        json.dumps(p, ensure_ascii=False) for p in second.posts
    ]


def test_output_does_not_depend_on_the_process():
    """Same bytes under different hash seeds: nothing depends on set or dict iteration order."""
    code = (
        "import hashlib, io; from crisiswatch.streams.scenarios import generate, preset; "
        "s = generate(preset('smoke')); b = io.StringIO(); s.to_jsonl(b); s.incidents_to_jsonl(b); "
        "print(hashlib.sha256(b.getvalue().encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(digests) == 1


def test_other_seed_gives_other_output():
    assert generate(preset("smoke", seed=2)).posts != scenario("smoke").posts


def test_start_time_is_a_parameter():
    later = generate(preset("smoke", start_s=scenarios.DEFAULT_START_S + 86_400.0))
    base = scenario("smoke")
    times = [seconds(p["created_at"]) for p in later.posts]
    assert min(times) >= scenarios.DEFAULT_START_S + 86_400.0
    assert len(later.posts) > 0.5 * len(base.posts)


def test_module_is_pure():
    """No Faust, no wall clock: the generator runs anywhere the detectors run."""
    code = "import sys, crisiswatch.streams.scenarios; print('faust' in sys.modules)"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
    source = Path(scenarios.__file__).read_text(encoding="utf-8")
    for forbidden in ("time.time(", "datetime.now(", "utcnow(", "time.monotonic(", "os.urandom"):
        assert forbidden not in source


# ------------------------------------------------------------------------------------- contract


@pytest.mark.parametrize("name", ["smoke", "demo"])
def test_every_post_follows_the_input_contract(name):
    posts = scenario(name).posts
    schema = json.loads((REPO / "streams" / "post.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    for post in posts:
        line = json.dumps(post, ensure_ascii=False)
        decoded = decode_post(line)
        assert isinstance(decoded, Post), (decoded, post)
        errors = list(validator.iter_errors(post))
        assert not errors, (errors[0].message, post)
        assert CREATED_AT.match(post["created_at"]), post["created_at"]
        assert post["kind"] in ("post", "forward", "comment")
        assert isinstance(post["author"]["followers"], int) and post["author"]["followers"] >= 0
        assert isinstance(post["author"]["verified"], bool)
        assert post["platform"] == {"zh": "weibo", "en": "twitter"}[decoded.lang or post_lang(post)]
        assert "sentiment" not in post
        if post["kind"] == "post":
            assert "parent_id" not in post
            assert post["root_id"] == post["id"]
            assert post["url"].startswith(("https://weibo.com/", "https://twitter.com/"))
        else:
            assert post["parent_id"] and "url" not in post and "brands" not in post
        assert post["text"]


def post_lang(post: dict) -> str:
    return "zh" if post["platform"] == "weibo" else "en"


def test_optional_fields_are_present_on_about_the_configured_share():
    posts = scenario("demo").posts
    lang_share = sum("lang" in p for p in posts) / len(posts)
    originals = [p for p in posts if p["kind"] == "post"]
    brands_share = sum("brands" in p for p in originals) / len(originals)
    assert 0.62 < lang_share < 0.78
    assert 0.42 < brands_share < 0.58


def test_sentiment_only_on_request_and_follows_the_planted_stance():
    result = generate(preset("demo", include_sentiment=True))
    by_kind = {incident.kind: incident.root_id for incident in result.incidents}
    with_sentiment = [p for p in result.posts if "sentiment" in p]
    assert len(with_sentiment) > 0.5 * len(result.posts)
    assert all(0.0 <= p["sentiment"] <= 1.0 for p in with_sentiment)

    def mean_negativity(root_id):
        return statistics.mean(p["sentiment"] for p in with_sentiment if p["root_id"] == root_id)

    assert mean_negativity(by_kind["viral_complaint"]) > 0.6
    assert mean_negativity(by_kind["positive_campaign"]) < 0.3


def test_originals_name_their_brand_by_name_or_alias():
    config = preset("demo")
    result = scenario("demo")
    forms = [tuple(f.lower() for f in (b.name, *b.aliases)) for b in config.brands]
    for post in result.posts:
        if post["kind"] == "post":
            text = post["text"].lower()
            assert any(any(form in text for form in brand_forms) for brand_forms in forms), post["text"]


def test_brand_profiles_carry_the_aliases_used_in_texts():
    profiles = scenario("demo").brand_profiles()
    assert [p.name for p in profiles] == [b.name for b in preset("demo").brands]
    assert all(p.aliases for p in profiles)


# ------------------------------------------------------------------------------------- cascades


def check_cascades(posts: list[dict]) -> None:
    by_id = {p["id"]: p for p in posts}
    assert len(by_id) == len(posts), "ids are unique"
    for post in posts:
        root = by_id[post["root_id"]]
        assert root["kind"] == "post"
        if post["kind"] == "post":
            continue
        parent = by_id[post["parent_id"]]
        assert parent["root_id"] == post["root_id"]
        assert seconds(parent["created_at"]) < seconds(post["created_at"])
        if parent["kind"] == "comment":
            assert post["kind"] == "comment", "comments are replied to, not forwarded"
        if post["kind"] == "forward" and post["platform"] == "twitter":
            assert "RT @" in post["text"]
        if post["kind"] == "forward" and post["platform"] == "weibo" and parent["kind"] == "forward":
            assert f"//@{parent['author']['id']}:" in post["text"]
        if post["kind"] == "comment" and parent["kind"] == "comment":
            assert parent["author"]["id"] in post["text"]


def check_event_time_order(posts: list[dict], out_of_order_s: float) -> None:
    latest = float("-inf")
    for post in posts:
        t = seconds(post["created_at"])
        assert t >= latest - out_of_order_s - 1e-3, (post["id"], latest - t)
        latest = max(latest, t)


@pytest.mark.parametrize("name", ["smoke", "demo"])
def test_cascades_reference_existing_parents_and_roots(name):
    check_cascades(scenario(name).posts)


def test_weibo_forward_chains_and_default_text():
    posts = scenario("demo").posts
    weibo_forwards = [p["text"] for p in posts if p["platform"] == "weibo" and p["kind"] == "forward"]
    assert any("//@" in text for text in weibo_forwards)
    assert any(text == "转发微博" for text in weibo_forwards)


@pytest.mark.parametrize("out_of_order_s", [0.0, 30.0])
def test_event_time_order_within_the_jitter(out_of_order_s):
    result = generate(preset("smoke", out_of_order_s=out_of_order_s))
    check_event_time_order(result.posts, out_of_order_s)
    times = [seconds(p["created_at"]) for p in result.posts]
    if out_of_order_s == 0.0:
        assert times == sorted(times)
    else:
        assert times != sorted(times), "the jitter reorders some posts"


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(min_value=0, max_value=2**31), out_of_order_s=st.sampled_from([0.0, 3.0, 60.0]))
def test_any_seed_gives_consistent_cascades_in_order(seed, out_of_order_s):
    result = generate(preset("smoke", seed=seed, out_of_order_s=out_of_order_s, duration_s=2400.0))
    check_cascades(result.posts)
    check_event_time_order(result.posts, out_of_order_s)
    start, end = result.config.start_s, result.config.end_s
    assert all(start <= seconds(p["created_at"]) < end + 1e-3 for p in result.posts)


def test_heavy_tails_in_followers_and_cascade_sizes():
    posts = small_week().posts
    followers = sorted({p["author"]["id"]: p["author"]["followers"] for p in posts}.values())
    assert followers[-1] > 1000 * statistics.median(followers)
    sizes = sorted(Counter(p["root_id"] for p in posts).values())
    assert statistics.median(sizes) <= 2
    assert sizes[-1] > 300
    assert any(p["author"]["verified"] for p in posts)


def test_daily_cycle_in_the_brand_time_zone():
    brand = BrandSpec(
        "ByteBrew Coffee", ("ByteBrew",), "en", time_zone="Asia/Tokyo", base_posts_per_hour=300.0
    )
    config = ScenarioConfig(
        seed=5, start_s=scenarios.DEFAULT_START_S, duration_s=2 * 86_400.0, brands=(brand,)
    )
    hours = Counter()
    for post in generate(config).posts:
        if post["kind"] == "post":
            hours[(int(seconds(post["created_at"]) // 3600) + 9) % 24] += 1  # Tokyo is UTC+9
    assert hours[21] > 4 * hours[4]
    assert hours[12] > 3 * hours[3]


def test_volume_follows_base_posts_per_hour():
    brand = BrandSpec("Northwind Air", base_posts_per_hour=200.0)
    config = ScenarioConfig(seed=3, duration_s=2 * 86_400.0, brands=(brand,), weekly_cycle=False)
    per_hour = len(generate(config).posts) / 48
    assert 120 < per_hour < 300


# ------------------------------------------------------------------------------------- incidents


def test_demo_has_a_viral_amplified_complaint_and_a_viral_campaign():
    result = scenario("demo")
    kinds = {incident.kind: incident for incident in result.incidents}
    assert set(kinds) == {"viral_complaint", "positive_campaign"}
    complaint, campaign = kinds["viral_complaint"], kinds["positive_campaign"]
    assert complaint.is_crisis and not campaign.is_crisis
    assert complaint.brand == "Northwind Air" and campaign.brand == "ByteBrew Coffee"
    cascade = [p for p in result.posts if p["root_id"] == complaint.root_id]
    assert len(cascade) > 500
    root = next(p for p in cascade if p["id"] == complaint.root_id)
    assert not root["author"]["verified"] and root["author"]["followers"] < 5000
    children = Counter(p.get("parent_id") for p in cascade)
    amplifier = max((p for p in cascade if p["kind"] == "forward"), key=lambda p: children[p["id"]])
    assert amplifier["author"]["verified"] and amplifier["author"]["followers"] >= 500_000
    amplified_at = seconds(amplifier["created_at"])
    assert complaint.start_s + 600 < amplified_at < complaint.end_s
    assert 1500 < len(result.posts) < 12_000
    # The complaint climbs: more reactions in the 10 minutes after the amplifier than in the first 10.
    after = sum(1 for p in cascade if 0 <= seconds(p["created_at"]) - amplified_at < 600)
    first = sum(1 for p in cascade if seconds(p["created_at"]) - complaint.start_s < 600)
    assert after > 3 * first


def test_week_plants_every_kind_with_ground_truth():
    result = small_week()
    kinds = Counter(incident.kind for incident in result.incidents)
    assert set(INCIDENT_KINDS) <= set(kinds)
    ids = {p["id"] for p in result.posts}
    for incident in result.incidents:
        assert incident.start_s < incident.end_s
        assert incident.is_crisis == (incident.kind in ("viral_complaint", "outage", "slow_burn"))
        if incident.root_id is not None:
            assert incident.root_id in ids


def test_other_brand_crisis_is_a_crisis_of_the_other_brand_only():
    result = small_week()
    pair = [i for i in result.incidents if i.kind == "other_brand_crisis"]
    assert len(pair) == 1
    mentioned = pair[0]
    crisis = next(i for i in result.incidents if i.root_id == mentioned.root_id and i is not mentioned)
    assert crisis.is_crisis and crisis.brand == "SkyLark Airlines" and not mentioned.is_crisis
    root = next(p for p in result.posts if p["id"] == mentioned.root_id)
    assert "SkyLark" in root["text"] and "northwind" in root["text"].lower()


def count_in(result: Scenario, incident: GroundTruthIncident, predicate) -> int:
    return sum(
        1
        for p in result.posts
        if p["kind"] == "post"
        and incident.start_s <= seconds(p["created_at"]) <= incident.end_s
        and predicate(p)
    )


def test_brand_wide_incidents_raise_that_brands_volume():
    result = small_week()
    for kind, factor in (("outage", 2.0), ("daily_peak", 1.4)):
        incident = next(i for i in result.incidents if i.kind == kind)
        name = incident.brand.lower()[:4]
        during = count_in(result, incident, lambda p, name=name: name in p["text"].lower())
        span = incident.end_s - incident.start_s
        before = GroundTruthIncident(
            incident.brand, None, incident.start_s - span, incident.start_s, False, kind
        )
        baseline = count_in(result, before, lambda p, name=name: name in p["text"].lower())
        assert during > factor * baseline + 5, (kind, during, baseline)


def test_scattered_negative_posts_stay_few():
    result = small_week()
    incident = next(i for i in result.incidents if i.kind == "scattered_negative")
    posts = [p for p in result.posts if "pebble" in p["text"].lower() and p["kind"] == "post"]
    during = [p for p in posts if incident.start_s <= seconds(p["created_at"]) <= incident.end_s]
    assert 5 <= len(during) <= 40


# ------------------------------------------------------------------------------------- output and config


def test_jsonl_round_trip():
    result = scenario("smoke")
    buffer = io.StringIO()
    result.to_jsonl(buffer)
    lines = buffer.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == result.posts
    assert any("快达" in line for line in lines), "written as UTF-8, not escaped"
    truth = io.StringIO()
    result.incidents_to_jsonl(truth)
    rows = [json.loads(line) for line in truth.getvalue().splitlines()]
    assert all(set(row) == {"brand", "root_id", "start", "end", "is_crisis", "kind"} for row in rows)
    assert all(CREATED_AT.match(row["start"]) and CREATED_AT.match(row["end"]) for row in rows)
    assert [GroundTruthIncident.from_dict(row) for row in rows] == [
        replace(i, start_s=round(i.start_s, 3), end_s=round(i.end_s, 3)) for i in result.incidents
    ]


def test_to_jsonl_writes_a_file(tmp_path):
    path = tmp_path / "posts.jsonl"
    scenario("smoke").to_jsonl(path)
    assert len(path.read_text(encoding="utf-8").splitlines()) == len(scenario("smoke").posts)


@pytest.mark.parametrize(
    ("build", "key"),
    [
        (lambda: preset("nope"), "preset"),
        (lambda: preset("demo", colour="red"), "colour"),
        (lambda: IncidentSpec("meteor", "x", 0.0), "kind"),
        (lambda: IncidentSpec("other_brand_crisis", "x", 0.0), "other_brand"),
        (lambda: IncidentSpec("outage", "x", 0.0, category="weather"), "category"),
        (lambda: BrandSpec("x", lang="fr"), "lang"),
        (lambda: BrandSpec("x", time_zone="Mars/Olympus"), "time_zone"),
        (lambda: ScenarioConfig(brands=()), "brands"),
        (
            lambda: ScenarioConfig(brands=(BrandSpec("a"),), incidents=(IncidentSpec("outage", "b", 0.0),)),
            "incidents[0].brand",
        ),
        (lambda: preset("smoke", out_of_order_s=-1.0), "out_of_order_s"),
    ],
)
def test_bad_config_names_the_key(build, key):
    with pytest.raises(ConfigError) as error:
        build()
    assert error.value.key == key


def test_brands_field_lists_both_brands_of_a_cross_brand_post():
    result = small_week()
    root_id = next(i.root_id for i in result.incidents if i.kind == "other_brand_crisis")
    root = next(p for p in result.posts if p["id"] == root_id)
    if "brands" in root:
        assert root["brands"] == ["SkyLark Airlines", "Northwind Air"]
    per_root = defaultdict(set)
    for post in result.posts:
        if "brands" in post:
            per_root[len(post["brands"])].add(post["id"])
    assert set(per_root) <= {1, 2}
