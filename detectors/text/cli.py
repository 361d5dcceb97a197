"""`crisiswatch classify` and `crisiswatch train-text` (wired by `streams/cli.py`; also `python -m` this module).

classify: one text per line in (stdin by default), exactly one line out per line in, always — the label
(`negative`/`neutral`/`positive` or `complaint`/`not_complaint`), then with `--proba` a tab and the
probability of negative (or of complaint). Lines are split on "\\n" only; invalid UTF-8 is replaced.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

BATCH_LINES = 8192


def _classify_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crisiswatch classify",
        description="Label texts, one per line: sentiment (negative/neutral/positive) or complaint.",
    )
    parser.add_argument("--task", choices=("sentiment", "complaint"), default="sentiment")
    parser.add_argument("--input", metavar="FILE", help="UTF-8 text, one text per line (default: stdin)")
    parser.add_argument(
        "--lang",
        choices=("en", "zh", "auto"),
        default="auto",
        help="language of every line; auto detects per line (default)",
    )
    parser.add_argument(
        "--proba",
        action="store_true",
        help="append a tab and P(negative) (sentiment) or P(complaint) (complaint)",
    )
    parser.add_argument(
        "--model", metavar="MANIFEST", help="manifest.json of retrained weights (default: shipped)"
    )
    parser.add_argument(
        "--config", metavar="FILE", help="crisiswatch YAML config; its `text` section applies"
    )
    return parser


def _lines(stream: IO[bytes]) -> Iterator[list[str]]:
    batch: list[str] = []
    for raw in stream:
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.endswith(b"\r"):
            line = line[:-1]
        batch.append(line.decode("utf-8", "replace"))
        if len(batch) >= BATCH_LINES:
            yield batch
            batch = []
    if batch:
        yield batch


def _text_config(path: str | None) -> object:
    from crisiswatch.detectors.text.config import TextConfig

    if not path:
        return TextConfig()
    import yaml

    with open(path, encoding="utf-8") as handle:
        document = yaml.safe_load(handle) or {}
    return TextConfig.from_mapping(document.get("text") or {})


def classify_main(argv: list[str]) -> int:
    args = _classify_parser().parse_args(argv)
    from crisiswatch.detectors.settings import ConfigError
    from crisiswatch.detectors.text.analyzer import TextAnalyzer
    from crisiswatch.detectors.text.config import TextConfig
    from crisiswatch.detectors.text.model import ModelFileError

    try:
        config = _text_config(args.config)
        assert isinstance(config, TextConfig)
        analyzer = TextAnalyzer.load(args.model, config) if args.model else TextAnalyzer.load_default(config)
    except (ConfigError, ModelFileError, OSError) as exc:
        print(f"crisiswatch classify: {exc}", file=sys.stderr)
        return 2
    source: IO[bytes]
    try:
        source = open(args.input, "rb") if args.input else sys.stdin.buffer  # noqa: SIM115
    except OSError as exc:
        print(f"crisiswatch classify: cannot read {args.input}: {exc}", file=sys.stderr)
        return 2
    out = sys.stdout.buffer
    try:
        for batch in _lines(source):
            results = analyzer.classify(batch, args.task, args.lang)
            if args.proba:
                text = "".join(f"{label}\t{probability:.4f}\n" for label, probability in results)
            else:
                text = "".join(f"{label}\n" for label, _ in results)
            out.write(text.encode("utf-8"))
        out.flush()
    except BrokenPipeError:
        return 0
    finally:
        if args.input:
            source.close()
    return 0


def _train_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crisiswatch train-text",
        description=(
            "Train text models from labelled TSV files (header row; text and label columns). Either a whole "
            "bundle from a recipe (how the shipped weights were made) or one model from your own files, "
            "keeping the other models of a base bundle."
        ),
        epilog=(
            "Examples:\n"
            "  crisiswatch train-text --recipe detectors/text/models/recipe.json --data-root ../shared/data "
            "--output detectors/text/models\n"
            "  crisiswatch train-text --task sentiment --lang en --input mine.tsv "
            "--label-map 0=negative,1=neutral,2=positive --output mymodels\n"
            "Then use it with `text: {model_manifest: mymodels/manifest.json}` or `classify --model`."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="directory for text_models.npz + manifest.json"
    )
    parser.add_argument("--recipe", metavar="JSON", help="train every model listed in this recipe")
    parser.add_argument(
        "--data-root", metavar="DIR", default=".", help="recipe source paths are relative to this"
    )
    parser.add_argument("--task", choices=("sentiment", "complaint"))
    parser.add_argument("--lang", choices=("en", "zh"))
    parser.add_argument(
        "--input", action="append", default=[], metavar="TSV", help="labelled file (repeatable)"
    )
    parser.add_argument(
        "--label-map",
        action="append",
        default=[],
        metavar="MAP",
        help="code=label list, e.g. 0=negative,1=neutral,2=positive (one per --input, or one for all); "
        "labels: negative/neutral/positive, complaint/not_complaint, or drop",
    )
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default="label")
    parser.add_argument("--c", type=float, default=None, help="inverse L2 regularisation strength")
    parser.add_argument(
        "--base", metavar="MANIFEST", help="bundle whose other models are kept (default: shipped)"
    )
    parser.add_argument("--version", help="version string written to the manifest")
    return parser


def train_main(argv: list[str]) -> int:
    args = _train_parser().parse_args(argv)
    from crisiswatch.detectors.text.model import ModelFileError, load_bundle, save_bundle
    from crisiswatch.detectors.text.train import (
        ModelSpec,
        Source,
        TrainingError,
        featurizers_for,
        load_recipe,
        parse_label_map,
        train_model,
    )

    command = "crisiswatch train-text " + " ".join(argv)
    try:
        if args.recipe:
            version, specs = load_recipe(args.recipe, args.data_root)
            featurizers = featurizers_for(specs)
            models: dict[str, dict[str, object]] = {}
            for spec in specs:
                print(f"training {spec.name} ...", file=sys.stderr)
                models[spec.name] = train_model(spec, featurizers[spec.lang], models)
            recipe = json.loads(Path(args.recipe).read_text(encoding="utf-8"))
            extra = {"recipe": recipe, "trained_with": command}
            path = save_bundle(Path(args.output), args.version or version, featurizers, models, extra)
        else:
            if not (args.task and args.lang and args.input and args.label_map):
                print(
                    "crisiswatch train-text: give --recipe, or --task, --lang, --input and --label-map",
                    file=sys.stderr,
                )
                return 2
            if len(args.label_map) not in (1, len(args.input)):
                print("crisiswatch train-text: give one --label-map, or one per --input", file=sys.stderr)
                return 2
            maps = args.label_map * len(args.input) if len(args.label_map) == 1 else args.label_map
            sources = tuple(
                Source(
                    path=p,
                    label_map=parse_label_map(m, args.task),
                    text_column=args.text_column,
                    label_column=args.label_column,
                )
                for p, m in zip(args.input, maps, strict=True)
            )
            base = load_bundle(args.base)
            featurizers = dict(base.featurizers)
            name = f"{args.lang}_{args.task}"
            previous = base.models.get(name)
            # Keep the replaced model's design (lexicon, stacking, keywords); it only learns new weights.
            spec = ModelSpec(
                lang=args.lang,
                task=args.task,
                sources=sources,
                regularization_c=args.c
                if args.c is not None
                else float(base.meta["models"].get(name, {}).get("info_c", 1.0)),
                label_offsets="prior" if args.task == "sentiment" and args.lang == "en" else "none",
                scaling=str(base.meta["models"].get(name, {}).get("info_scaling", "idf")),
                use_lexicon=previous.uses_lexicon if previous else False,
                use_intent_inputs=previous.uses_intent if previous else False,
                stack_model=previous.stack_model if previous else None,
                stack_scale=previous.stack_scale if previous else 0.3,
                use_keywords=previous.keywords is not None if previous else False,
                soft_neutral=bool(base.meta["models"].get(name, {}).get("info_soft_neutral", False)),
                neutral_target=float(base.meta["models"].get(name, {}).get("info_neutral_target", 0.5)),
            )
            if args.lang not in featurizers:
                featurizers.update(featurizers_for([spec]))
            models = {n: _as_spec(m, base.meta["models"][n]) for n, m in base.models.items()}
            print(f"training {spec.name} ...", file=sys.stderr)
            models[spec.name] = train_model(spec, featurizers[args.lang], models)
            # Models stacked on the retrained one keep their weights; they read its new logits.
            version = args.version or f"{base.version}+{spec.name}-custom"
            extra = {"trained_with": command, "base_version": base.version}
            path = save_bundle(Path(args.output), version, featurizers, models, extra)
    except (TrainingError, ModelFileError, OSError, KeyError) as exc:
        print(f"crisiswatch train-text: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path} and {path.parent / 'manifest.json'}", file=sys.stderr)
    return 0


def _as_spec(model: object, meta: dict[str, object]) -> dict[str, object]:
    """A loaded model back in the form `save_bundle` takes (weights round-trip float16 exactly)."""
    from crisiswatch.detectors.text.model import LinearModel

    assert isinstance(model, LinearModel)
    return {
        **meta,
        "W": model.weights,
        "b": model.bias,
        "scale": model.scale,
        "Wd": model.dense_weights,
        "gate": model.intent_gate,
        "classes": model.classes,
        "label_offsets": list(model.label_offsets),
    }


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    commands = {"classify": classify_main, "train-text": train_main}
    if not argv or argv[0] not in commands:
        print("usage: python -m crisiswatch.detectors.text.cli {classify,train-text} ...", file=sys.stderr)
        return 2
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
