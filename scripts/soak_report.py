"""Judges and plots a soak (scripts/soak.sh): for each of cli.csv and bot.csv in the folder,
the highest resident memory of every minute after minute 5 must stay within 10 % above the
value at minute 5, and no peak may exceed the limit. Peaks, not instants: resident memory
swings with what is in flight, so each sample carries the highest value since the one before
(VmHWM, reset at each sample). The value at minute 5 is the high-water mark by then (the
highest per-minute peak of minutes 0-5): which photos happen to be in flight together in one
minute moves a single minute's peak by several percent, so one low minute must not become the
bar, while growth after minute 5 still fails. Also prints the trend of the later per-minute
peaks (least squares, MiB per minute). Writes soak.png, exits 1 when a bar is missed."""

import csv
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SETTLED_AFTER_S = 300
BAND = 0.10


def load(path):
    with open(path) as f:
        rows = [
            (float(r["seconds"]), float(r["resident_mib"]), float(r["peak_mib"]), int(r["answered"] or 0))
            for r in csv.DictReader(f)
        ]
    return rows


def minute_peaks(rows):
    peaks = {}
    for seconds, _, mib, _ in rows:
        minute = int(seconds // 60)
        peaks[minute] = max(peaks.get(minute, 0.0), mib)
    return peaks


def slope(points):
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread if spread else 0.0


def judge(name, rows, limit):
    if not rows:
        return False, f"{name}: no samples"
    peaks = minute_peaks(rows)
    settled_minute = SETTLED_AFTER_S // 60
    # The last minute is usually cut short; judge whole minutes only.
    later = [peaks[m] for m in sorted(peaks) if settled_minute < m < max(peaks)]
    if settled_minute not in peaks or not later:
        return False, f"{name}: shorter than {SETTLED_AFTER_S // 60 + 2} minutes"
    base = max(peaks[m] for m in peaks if m <= settled_minute)
    trend = slope([(m, peaks[m]) for m in sorted(peaks) if settled_minute < m < max(peaks)])
    peak = max(r[2] for r in rows)
    high, low = max(later), min(later)
    ok = high <= base * (1 + BAND) and peak <= limit
    line = (
        f"{name}: {rows[-1][0] / 60:.1f} min, {rows[-1][3]} images, peak {peak:.0f} MiB (limit {limit:.0f}); "
        f"per-minute peaks: by minute 5 {base:.0f} MiB, later minutes {low:.0f}..{high:.0f} MiB "
        f"({(low / base - 1) * 100:+.1f} %..{(high / base - 1) * 100:+.1f} %, trend {trend:+.2f} MiB/min), "
        f"last sample {rows[-1][1]:.0f} MiB: "
        f"{'flat' if ok else 'FAILED'}"
    )
    return ok, line


def main():
    folder, limit, photos = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    runs = {name: load(f"{folder}/{name}.csv") for name in ("cli", "bot")}
    results = [judge(f"prism {name}" if name == "cli" else "prism-bot", rows, limit) for name, rows in runs.items()]
    print(f"photos: {photos}; limit {limit:.0f} MiB")
    for _, line in results:
        print(line)
    fig, ax = plt.subplots(figsize=(9, 4.5))
    labels = {"cli": "prism process (1 thread)", "bot": "prism-bot (2 workers)"}
    for name, rows in runs.items():
        minutes = [r[0] / 60 for r in rows]
        (line,) = ax.plot(minutes, [r[2] for r in rows], label=f"{labels[name]}, peak")
        ax.plot(minutes, [r[1] for r in rows], color=line.get_color(), linewidth=0.6, alpha=0.5, label="now")
    ax.axhline(limit, color="red", linestyle="--", label=f"limit {limit:.0f} MiB")
    ax.axvline(SETTLED_AFTER_S / 60, color="grey", linestyle=":", label="minute 5")
    ax.set_xlabel("minutes")
    ax.set_ylabel("resident memory (MiB)")
    ax.set_ylim(bottom=0)
    ax.set_title("Prism soak: resident memory while streaming photos")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(f"{folder}/soak.png", dpi=100)
    sys.exit(0 if all(ok for ok, _ in results) else 1)


main()
