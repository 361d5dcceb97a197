"""Pure detection logic: no Faust, no I/O, event time only.

Every detector has one interface (`base.Detector`, river style): `update(event) -> Score`, a batch path
`update_many`, `score_at(now_s)`, and versioned `to_state()` / `from_state()`; each is configured by a
frozen dataclass in `config`. The detectors: `cascade.ForwardSurge` (forward_surge),
`negative.CascadeNegativeSurge` and `negative.BrandNegativeSurge` (negative_surge), `volume.VolumeSurge`
(volume_surge, on posts or plain `IntervalCount`s). `engine.DetectionEngine` is the one entry point the
streams layer uses: it keeps the detectors per cascade (`cascade.CascadeState`) and per brand
(`brand.BrandState`) and turns their scores into severities with the paging policy (`paging`).
"""
