"""What a training run shows in a terminal: a one-line progress bar on stderr, and Ctrl-C to stop it."""

from __future__ import annotations

import sys
import time

from .training import StepReport, TrainingCallbacks


def format_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60:02d}:{seconds % 60:02d}"


class ConsoleProgress(TrainingCallbacks):
    """A live bar on a terminal, a line every 10 s in a log file; the first Ctrl-C stops after the current step."""

    def __init__(self):
        self.stop_requested = False
        self.interactive = sys.stderr.isatty()
        self.last_print = 0.0

    def request_stop(self, *_):
        if self.stop_requested:
            raise KeyboardInterrupt
        self.stop_requested = True
        print("\nStopping after this step and saving what was learned (Ctrl-C again to abort).", file=sys.stderr)

    def should_stop(self) -> bool:
        return self.stop_requested

    def on_step(self, report: StepReport) -> None:
        now = time.monotonic()
        # A terminal gets a live bar; a log file gets a line every 10 s rather than thousands of lines.
        if not self.interactive and now - self.last_print < 10 and report.step != report.total:
            return
        self.last_print = now
        done = report.step / report.total
        bar = "#" * int(done * 24)
        line = (f"step {report.step}/{report.total} [{bar:<24}] loss {report.loss:.4f} "
                f"lr {report.learning_rate:.2e} norm {report.norm_ratio:.2f}x "
                f"{format_seconds(report.elapsed)}<{format_seconds(report.eta)}")
        print(("\r" + line) if self.interactive else line, end="" if self.interactive else "\n",
              file=sys.stderr, flush=True)
        if self.interactive and report.step == report.total:
            print(file=sys.stderr)

    def on_warning(self, message: str) -> None:
        print(("\n" if self.interactive else "") + f"warning: {message}", file=sys.stderr, flush=True)
