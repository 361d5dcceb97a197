"""Pure detection logic: no Faust, no I/O, event time only.

`engine.DetectionEngine` is the one entry point (forward_surge, negative_surge, volume_surge);
`config.DetectorsConfig` is the `detectors` config section. Per-key state: `cascade.CascadeState`,
`brand.BrandState`; the count detector `volume.CountSurge`; the paging policy `paging`.
"""
