"""Audit figures over several populations (one results folder each, e.g. the same spec at seeds 0,
1 and 2): per detector and group, the mean ± sd over the folders of AUROC, right-target AUROC,
TPR at 5% FPR, the calibrated TPR and FPR, target top-1 and the fixed rule's TPR and FPR, and
the poisoned + clean models each folder scored; then, per detector, the calibrated FPR pooled over
the folders (false positives over every clean model not held out). Reads each folder's newest `audit` part (the one `iscp audit` and the report show).

    python3 scripts/audit_seeds.py results/audit-population results/audit-population-s1 ...

Needs polars (`scripts/setup-pyread.sh` installs it).
"""

import glob
import os
import sys

import polars as pl

METRICS = [
    "auroc",
    "auroc_right_target",
    "tpr_at_5_fpr",
    "calibrated_tpr",
    "calibrated_fpr",
    "target_top1",
    "rule_tpr",
    "rule_fpr",
    "seconds_per_model",
]


def newest_audit(folder: str) -> pl.DataFrame:
    parts = glob.glob(os.path.join(folder, "audit", "part-*.parquet"))
    if not parts:
        sys.exit(f"{folder}: no audit part (did the population's sweep finish?)")
    part = max(parts, key=os.path.getmtime)
    return pl.read_parquet(part).with_columns(pl.lit(folder).alias("population"))


def main(folders: list[str]) -> None:
    if not folders:
        sys.exit(__doc__)
    a = pl.concat([newest_audit(f) for f in folders], how="diagonal_relaxed")
    order = {d: i for i, d in enumerate(a["detector"].unique(maintain_order=True))}
    summary = (
        a.group_by(["detector", "group"], maintain_order=True)
        .agg(
            pl.len().alias("n"),
            (pl.col("poisoned").cast(pl.Utf8) + "+" + pl.col("clean").cast(pl.Utf8))
            .str.join(" ")
            .alias("models"),
            *[pl.col(m).mean().alias(m) for m in METRICS],
            *[pl.col(m).std().alias(m + "_sd") for m in METRICS],
        )
        .sort(
            pl.col("detector").replace_strict(order, return_dtype=pl.Int64),
            "group",
        )
    )
    print(f"{len(folders)} populations: {', '.join(folders)}")
    header = f"{'detector':<24} {'group':<18} {'models':<20}" + "".join(
        f" {m:>22}" for m in METRICS
    )
    print(header)
    for r in summary.iter_rows(named=True):
        cells = []
        for m in METRICS:
            v, sd = r[m], r[m + "_sd"]
            if v is None:
                cells.append(f" {'–':>22}")
            elif sd is None:
                cells.append(f" {v:>22.3f}")
            else:
                cells.append(f" {f'{v:.3f} ± {sd:.3f}':>22}")
        print(f"{r['detector']:<24} {r['group']:<18} {r['models']:<20}" + "".join(cells))
    print("\ncalibrated FPR pooled over the populations (clean models not held out):")
    whole = a.filter(pl.col("group") == "all").with_columns(
        (pl.col("clean") - pl.col("calibration_models")).alias("measured")
    )
    pooled = (
        whole.with_columns(
            (pl.col("calibrated_fpr") * pl.col("measured")).round().alias("false_positives")
        )
        .group_by("detector", maintain_order=True)
        .agg(pl.col("false_positives").sum(), pl.col("measured").sum(), pl.col("calibration_models"))
    )
    for r in pooled.iter_rows(named=True):
        fp, n = r["false_positives"], r["measured"]
        share = f"{fp / n:.3f}" if n and fp is not None else "–"
        held = "/".join(str(h) for h in r["calibration_models"])
        print(f"{r['detector']:<24} {share:>6}  ({fp:.0f} of {n}; held out {held})")


if __name__ == "__main__":
    main(sys.argv[1:])
