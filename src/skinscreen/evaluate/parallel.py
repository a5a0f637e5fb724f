"""The robustness suite over worker processes: ``skinscreen evaluate --robustness --workers N``.

A full suite run is 21 encoder runs per photo, hours for a hundred photos on two cores. Each
photo's rows depend only on the photo, its expert mask and the seed (box jitter is seeded per photo
and condition), so the photos can be spread over processes, each with its own predictor built
like the caller's (same model, variant, bundle, engine and box check), and the rows put back in
photo order: the result is that of one serial :func:`~skinscreen.evaluate.robustness.run_robustness`
call, up to the last bits of the engines' threaded sums. Workers are started with ``spawn`` (never
forked from a process whose inference engines already run threads).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from skinscreen.errors import SkinscreenError
from skinscreen.evaluate.dataset import Pair
from skinscreen.evaluate.robustness import RobustnessResult, run_robustness


@dataclass(frozen=True)
class PredictorRecipe:
    """What a worker needs to build the same predictor as the caller's (picklable)."""

    model: str
    variant: str
    bundle_dir: str
    engine: str
    box_check: bool
    threads: int
    tta: bool = False
    commercial_only: bool = False

    @classmethod
    def of(cls, predictor, threads: int) -> PredictorRecipe:
        """The recipe of an opened :class:`~skinscreen.predictor.LesionPredictor`."""
        return cls(
            model=predictor.spec.name,
            variant=predictor.bundle.variant,
            bundle_dir=str(predictor.bundle.root),
            engine=predictor.engine_choice.engine,
            box_check=predictor.box_checker is not None,
            threads=threads,
            tta=predictor.tta,
            commercial_only=predictor.commercial_only,
        )

    def build(self):
        from skinscreen.predictor import LesionPredictor

        return LesionPredictor(
            self.model,
            variant=self.variant,
            bundle_dir=self.bundle_dir,
            threads=self.threads,
            engine=self.engine,
            box_check=self.box_check,
            tta=self.tta,
            commercial_only=self.commercial_only,
        )


_worker_predictor = None


def _start_worker(recipe: PredictorRecipe) -> None:
    global _worker_predictor
    _worker_predictor = recipe.build()


def _one_photo(pair: Pair, conditions: str | None, options: dict):
    from skinscreen.evaluate.perturbations import select

    res = run_robustness(_worker_predictor, [pair], select(conditions), **options)
    return res.rows, res.failures


def cpus_available() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def run_robustness_workers(
    predictor,
    pairs: list[Pair],
    conditions: str | None,
    *,
    workers: int,
    threads: int | None = None,
    progress: Callable | None = None,
    **options,
) -> RobustnessResult:
    """:func:`~skinscreen.evaluate.robustness.run_robustness` over ``workers`` processes.

    Args:
        predictor: the caller's ``LesionPredictor``; each worker builds the same one.
        pairs: photo/mask pairs; the rows come back in this order.
        conditions: condition names as ``--conditions`` takes them (None: all).
        workers: worker processes (>= 1).
        threads: inference threads per worker (default: the available CPUs / ``workers``).
        progress: wraps the per-photo results as they are collected (a progress bar).
        options: the other keyword arguments of ``run_robustness`` (prompt, colour_constancy,
            seed, metadata, margin).
    """
    if workers < 1:
        raise SkinscreenError(f"--workers must be at least 1, got {workers}")
    recipe = PredictorRecipe.of(predictor, threads or max(1, cpus_available() // workers))
    result = RobustnessResult()
    with ProcessPoolExecutor(
        min(workers, max(1, len(pairs))),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(recipe,),
    ) as pool:
        futures = [pool.submit(_one_photo, pair, conditions, options) for pair in pairs]
        for future in progress(futures) if progress else futures:
            rows, failures = future.result()
            result.rows.extend(rows)
            result.failures.extend(failures)
    return result


__all__ = ["PredictorRecipe", "cpus_available", "run_robustness_workers"]
