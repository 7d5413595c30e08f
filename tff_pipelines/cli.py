"""`tffp`: validate, account, inspect, run and export federated training described by a spec.

Bad input (spec, data, a run directory in the wrong state) exits with code 2 and a message that
names what to fix; it never shows a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tff_pipelines.runtime import silence_tensorflow

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tffp",
        description="Private federated learning on TensorFlow Federated, from a spec file.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def with_spec(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("spec", help="spec file (.yaml, .yml or .toml)")
        sub.add_argument(
            "--set",
            dest="overrides",
            action="append",
            default=[],
            metavar="FIELD=VALUE",
            help="override a field, e.g. --set training.rounds=5 (repeatable)",
        )
        return sub

    run = with_spec("run", "train as the spec says; write metrics, privacy report and model")
    run.add_argument("--out", help="run directory (default: output.dir of the spec)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run")
    progress = run.add_mutually_exclusive_group()
    progress.add_argument("--progress", dest="progress", action="store_true", default=None)
    progress.add_argument("--no-progress", dest="progress", action="store_false")
    run.add_argument("--quiet", action="store_true", help="print only the final summary")
    with_spec("validate", "check a spec and report every problem at once")
    account = with_spec("account", "privacy of the run a spec describes, without data or training")
    account.add_argument("--json", action="store_true", help="print the privacy report as JSON")
    with_spec("inspect", "show the TFF type signatures and the aggregation chain of a spec")
    export = commands.add_parser("export", help="write saved_model/ from a run's last checkpoint")
    export.add_argument("run_dir", help="a directory written by `tffp run`")
    export.add_argument("--out", help="where to write the SavedModel (default RUN_DIR/saved_model)")
    commands.add_parser("schema", help="print the spec file JSON Schema (for editors)")
    return parser


def main(argv: list[str] | None = None) -> int:
    silence_tensorflow()
    args = _parser().parse_args(argv)
    from tff_pipelines.errors import InputError

    try:
        return _COMMANDS[args.command](args)
    except InputError as err:
        print(f"tffp {args.command}: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(
            "\ntffp: interrupted; completed rounds are checkpointed, continue with --resume",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED


def _load(args):
    from tff_pipelines.spec import load_spec

    return load_spec(args.spec, overrides=args.overrides)


def _validate(args) -> int:
    spec = _load(args)
    print(
        f"{args.spec}: valid ({spec.name}: {spec.data.source}, {spec.model.type}, "
        f"{spec.training.algorithm}, privacy {spec.privacy.mechanism})"
    )
    return 0


def _account(args) -> int:
    from tff_pipelines.privacy import plan_privacy, privacy_needs_data

    spec = _load(args)
    if privacy_needs_data(spec):  # the model's or the clients' sizes: loads the data (and TF)
        from tff_pipelines.run import plan_for_data, prepare_data

        plan = plan_for_data(spec, prepare_data(spec), args.spec)
    else:
        plan = plan_privacy(spec, source=args.spec)
    document = plan.projection()
    if args.json:
        print(json.dumps(document, indent=2))
        return 0
    print(account_text(document))
    return 0


def account_text(doc: dict) -> str:
    from tff_pipelines.report import noise_text

    if not doc["private"]:
        return "privacy.mechanism is none: training is not differentially private."
    noise = doc["noise"]
    lines = [
        f"epsilon = {doc['epsilon']:.4f} at delta = {doc['delta']:g} after {doc['rounds']} "
        f"round{'' if doc['rounds'] == 1 else 's'} "
        f"({doc['accountant'].upper()} accountant)",
        f"  mechanism     {doc['mechanism']}: "
        + (f"clip {noise['clip']:g}, " if "clip" in noise else "")
        + noise_text(noise)
        + (
            f" (calibrated to epsilon {doc['noise_calibrated_to_epsilon']:g})"
            if doc.get("noise_calibrated_to_epsilon")
            else ""
        ),
        f"  sampling      {doc['sampling']['kind']}: {doc['sampling']['cohort']} of "
        f"{doc['sampling']['population']} clients per round (rate {doc['sampling']['rate']:.4g})",
        f"  unit          one {doc['unit']}; neighbouring: {doc['neighbouring']}",
    ]
    lines += _secure_sum_lines(doc)
    zcdp = doc.get("zcdp")
    if zcdp and doc["accountant"] == "zcdp":
        rho, epsilon = float(zcdp["rho"]), float(zcdp["epsilon"])
        lines.append(
            f"  zCDP          rho = {rho:.4g}, epsilon = {epsilon:.4f}; exact RDP epsilon = "
            f"{float(doc['epsilon_rdp']):.4f}; the epsilon above is the larger"
        )
        if zcdp["approximate"] and not zcdp["approximation_holds"]:
            lines.append(
                "                the q^2/sigma^2 approximation for sampled steps does not hold "
                "at this rho: trust the exact RDP figure"
            )
    elif zcdp:
        lines.append(
            f"  zCDP          rho = {zcdp['rho']:.4g}, epsilon = {zcdp['epsilon']:.4f} "
            "(Yu et al.'s accounting; the epsilon above is the tighter exact RDP one)"
        )
    if doc.get("user_level"):
        from tff_pipelines.report import user_level_text

        lines.append(f"  user level    {user_level_text(doc['user_level'])}")
        lines += _secure_sum_lines(doc["user_level"])
        lines += [f"  warning       {w}" for w in doc["user_level"].get("warnings", [])]
    protocol = doc.get("secure_aggregation_protocol")
    if protocol:
        lines.append(
            f"  protocol      SecAgg+: {protocol['neighbours']} neighbours, threshold "
            f"{protocol['threshold']}, tolerates {protocol['max_dropout']:g} dropping out "
            f"(simulated dropout rate {protocol['simulated_dropout_rate']:g})"
        )
    if doc.get("stopped_by_budget"):
        lines.append(
            f"  budget        max_epsilon {doc['max_epsilon']:g} affords {doc['rounds']} of "
            f"{doc['planned_rounds']} rounds"
        )
    per_round = doc["epsilon_per_round"]
    schedule = doc.get("schedule")
    if schedule:
        lines += _schedule_lines(schedule, per_round)
    elif per_round:
        n = len(per_round)
        marks = sorted({1 + (n - 1) * i // 5 for i in range(6)})
        lines.append(
            "  epsilon after round " + ", ".join(f"{r}: {per_round[r - 1]:.3g}" for r in marks)
        )
    lines += [f"  warning       {warning}" for warning in doc.get("warnings", [])]
    return "\n".join(lines)


def _secure_sum_lines(doc: dict) -> list[str]:
    noise = doc["noise"]
    if "bits" not in noise:
        return []
    return [
        f"  secure sum    {noise['bits']} bits, {noise['rotation']} rotation of "
        f"{noise['dimension']} parameters, predicted wrap probability "
        f"{noise['predicted_wrap_probability']:.2g} per coordinate "
        f"({doc['secure_aggregation']})"
    ]


def _schedule_lines(schedule: dict, epsilons: list[float]) -> list[str]:
    """The schedule's parameters, then every round's noise multiplier and the epsilon spent."""
    parameters = ", ".join(
        f"{k} {v:g}" for k, v in schedule.items() if k not in ("kind", "noise_multiplier_per_round")
    )
    lines = [f"  schedule      {schedule['kind']}: {parameters}"]
    if schedule["kind"] == "validation_based":
        lines.append(
            "                (projected as if accuracy keeps improving: sigma never decays)"
        )
    lines.append("    round   noise multiplier   epsilon")
    sigmas = schedule["noise_multiplier_per_round"]
    for round_num, (sigma, epsilon) in enumerate(zip(sigmas, epsilons, strict=True), start=1):
        lines.append(f"    {round_num:>5}   {sigma:>16.4f}   {epsilon:.4f}")
    return lines


def _inspect(args) -> int:
    from tff_pipelines import runtime
    from tff_pipelines.compile import compile_spec
    from tff_pipelines.run import model_shape, plan_for_data, prepare_data
    from tff_pipelines.secure_round import SecureAggregationProcess
    from tff_pipelines.selective_sgd import SelectiveSgdProcess

    spec = _load(args)
    data = prepare_data(spec)
    shape = model_shape(data)
    plan = plan_for_data(spec, data, args.spec)
    with runtime.session():
        compiled = compile_spec(spec, shape, plan)
        process = compiled.process
        if isinstance(process, SelectiveSgdProcess):
            print("state:      the global model, update counts and every participant's local model")
            print(f"next:       {process.round_computation.type_signature}")
        elif isinstance(process, SecureAggregationProcess):
            print(f"initialize: {process.initialize.type_signature}")
            print(f"next, to the uploads: {process.upload.type_signature}")
            print("next, then SecAgg+ sums the uploads (outside TFF, as a deployment would)")
            print(f"next, from the sum:   {process.finish.type_signature}")
        else:
            print(f"initialize: {process.initialize.type_signature}")
            print(f"next:       {process.next.type_signature}")
    print(f"weighting:  {compiled.weighting}")
    print("aggregation:")
    for step in compiled.aggregation:
        print(f"  - {step}")
    return 0


def _run(args) -> int:
    from tff_pipelines.report import summary
    from tff_pipelines.run import run

    spec = _load(args)
    log = (lambda message: None) if args.quiet else (lambda m: print(m, file=sys.stderr))
    result = run(
        spec, args.out, resume=args.resume, progress=args.progress, log=log, source=args.spec
    )
    print(summary(result))
    return 0


def _export(args) -> int:
    from tff_pipelines import checkpoint
    from tff_pipelines.errors import RunError
    from tff_pipelines.export import assign_weights, export_saved_model, read_model_card
    from tff_pipelines.models import build_model
    from tff_pipelines.run import RESOLVED_SPEC, SAVED_MODEL
    from tff_pipelines.spec import load_spec

    run_dir = Path(args.run_dir)
    if not checkpoint.exists(run_dir) or not (run_dir / RESOLVED_SPEC).is_file():
        raise RunError(f"{run_dir}: not a run directory (needs {RESOLVED_SPEC} and a checkpoint)")
    spec = load_spec(run_dir / RESOLVED_SPEC)
    saved = checkpoint.load(run_dir)
    card = read_model_card(run_dir)
    model = build_model(spec.model, card.shape)
    assign_weights(model, saved.trainable, saved.non_trainable)
    path = Path(args.out) if args.out else run_dir / SAVED_MODEL
    export_saved_model(model, card.shape, path, inputs=card.inputs, target=card.target)
    print(f"SavedModel of round {saved.round} written to {path}")
    return 0


def _schema(args) -> int:
    from tff_pipelines.spec import json_schema

    print(json.dumps(json_schema(), indent=2))
    return 0


_COMMANDS = {
    "run": _run,
    "validate": _validate,
    "account": _account,
    "inspect": _inspect,
    "export": _export,
    "schema": _schema,
}

if __name__ == "__main__":
    sys.exit(main())
