"""What a person sees: a progress bar while training, a one-screen summary, and PNG plots."""

from __future__ import annotations

import os
import sys
from typing import Any

_HEADLINE_METRICS = ("eval_accuracy", "eval_loss", "eval_mean_squared_error")


class _Progress:
    """tqdm over rounds with the latest loss/accuracy/epsilon; silent when disabled."""

    def __init__(self, bar):
        self._bar = bar

    def update(self, record: dict[str, Any]) -> None:
        if self._bar is None:
            return
        shown = {}
        for key in ("train_loss", "eval_accuracy", "epsilon"):
            if record.get(key) is not None:
                shown[key.replace("_", " ")] = f"{record[key]:.4g}"
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def progress_enabled(setting: str) -> bool:
    if setting == "always":
        return True
    if setting == "never":
        return False
    return sys.stdout.isatty() and sys.stderr.isatty() and not os.environ.get("CI")


def progress_bar(spec, *, total: int, initial: int, enabled: bool | None) -> _Progress:
    if enabled is None:
        enabled = progress_enabled(spec.runtime.progress)
    if not enabled:
        return _Progress(None)
    from tqdm import tqdm

    return _Progress(
        tqdm(total=total, initial=initial, desc=spec.name, unit="round", file=sys.stderr)
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def summary(result) -> str:
    """The end-of-run screen: what ran, how well, what privacy it cost, where things are."""
    privacy = result.privacy
    final = result.final_metrics
    lines = [f"run: {result.run_dir}"]
    status = f"{result.rounds}/{result.planned_rounds} rounds in {result.seconds:.1f} s"
    if result.stopped_by_budget:
        status += " (stopped: privacy.max_epsilon reached)"
    lines.append(f"  training  {status}")
    shown = [f"{k.removeprefix('eval_')} {_fmt(final[k])}" for k in _HEADLINE_METRICS if k in final]
    if shown:
        averaged = final.get("averaged_models") or 0
        of = f" (the mean of the last {averaged} global models)" if averaged > 1 else ""
        lines.append("  test      " + ", ".join(shown) + of)
    if privacy.get("private"):
        noise = privacy.get("noise", {})
        lines.append(
            f"  privacy   ({_fmt(privacy['epsilon'])}, {privacy['delta']:g})-DP for one "
            f"{privacy['unit']}, {privacy['mechanism']} mechanism, {noise_text(noise)}"
            + (f", clip {_fmt(noise['clip'])}" if "clip" in noise else "")
        )
        if "bits" in noise:
            how = _secure_sum_text(privacy)
            lines.append(
                f"            {noise['bits']}-bit modular secure sum ({how}), "
                f"predicted wrap probability {noise['predicted_wrap_probability']:.2g}"
            )
        lines += [f"  warning   {warning}" for warning in privacy.get("warnings", [])]
        lines.append(
            f"            {privacy['accountant'].upper()} accountant, "
            f"{privacy['sampling']['kind']} sampling (rate {privacy['sampling']['rate']:.4g}), "
            f"neighbouring: {privacy['neighbouring']}"
        )
        user = privacy.get("user_level")
        if user:
            lines.append("  and       " + user_level_text(user))
    else:
        lines.append("  privacy   none: the model is NOT differentially private")
    lines.append(f"  outputs   metrics.jsonl, privacy.json, checkpoint.npz in {result.run_dir}")
    if result.saved_model is not None:
        lines.append(f"  model     {result.saved_model}")
    return "\n".join(lines)


def _secure_sum_text(privacy: dict[str, Any]) -> str:
    protocol = privacy.get("secure_aggregation_protocol")
    if protocol is None:
        return "simulated in the clear"
    text = (
        f"SecAgg+, {protocol['neighbours']} neighbours, threshold {protocol['threshold']}; "
        f"{protocol['clients_dropped']} clients dropped"
    )
    if protocol["rounds_refused"]:
        text += f", {protocol['rounds_refused']} rounds refused"
    return text


def user_level_text(user: dict[str, Any]) -> str:
    """The second guarantee of dpsgd with privacy.user_level, per client."""
    noise = user["noise"]
    return (
        f"({_fmt(user['epsilon'])}, {user['delta']:g})-DP for one {user['unit']} "
        f"({user['neighbouring']}), {user['mechanism']}, {noise_text(noise)}, "
        f"clip {_fmt(noise.get('clip'))}, noise added by {noise['noise_added_by'].split(' (')[0]}"
    )


def noise_text(noise: dict[str, Any]) -> str:
    """How much noise, in the mechanism's own terms."""
    if "mu" in noise:  # SMM states its noise as a Poisson mean and its scale as gamma
        return f"mu {noise['mu']:.4g} per client (gamma {noise['gamma']:.4g})"
    if "epsilon_per_upload" in noise:  # svt: pure DP per upload
        return (
            f"epsilon {noise['epsilon_per_upload']:.4g} per upload of at most "
            f"{noise['max_uploaded_coordinates']} coordinates, each within ±{noise['bound']:g}"
        )
    return f"noise multiplier {_fmt(noise.get('noise_multiplier'))}"


def write_plots(result) -> list[str]:
    """training.png (loss and test metrics per round) and, for private runs, privacy.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    history = result.history
    if not history:
        return []
    written = []
    metric_keys = [k for k in ("eval_accuracy", "eval_mean_squared_error") if k in history[-1]]
    fig, axes = plt.subplots(1, 1 + len(metric_keys), figsize=(5 * (1 + len(metric_keys)), 3.6))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    for key, label in (("train_loss", "train loss"), ("eval_loss", "test loss")):
        points = [(r["round"], r[key]) for r in history if r.get(key) is not None]
        if points:
            axes[0].plot(*zip(*points, strict=True), marker=".", label=label)
    axes[0].set(xlabel="round", ylabel="loss", title="loss")
    axes[0].legend()
    for ax, key in zip(axes[1:], metric_keys, strict=True):
        points = [(r["round"], r[key]) for r in history if r.get(key) is not None]
        ax.plot(*zip(*points, strict=True), marker=".", color="tab:green")
        ax.set(xlabel="round", ylabel=key.removeprefix("eval_"), title=f"test {key[5:]}")
    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(f"{result.run_dir.name}: {result.privacy.get('mechanism', 'none')}")
    fig.tight_layout()
    path = result.run_dir / "training.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(str(path))

    epsilons = [(r["round"], r["epsilon"]) for r in history if r.get("epsilon") is not None]
    if epsilons:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.plot(*zip(*epsilons, strict=True), marker=".", color="tab:red", label="spent")
        max_epsilon = result.privacy.get("max_epsilon")
        if max_epsilon is not None:
            ax.axhline(max_epsilon, linestyle="--", color="grey", label="max_epsilon")
        ax.set(
            xlabel="round",
            ylabel="epsilon",
            title=f"privacy spent (delta = {result.privacy['delta']:g})",
        )
        ax.legend()
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        fig.tight_layout()
        path = result.run_dir / "privacy.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(str(path))
    return written
