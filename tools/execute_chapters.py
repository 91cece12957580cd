"""Execute the book's chapters in parallel, one kernel per core, into the build's jupyter-cache.

    .venv/bin/python tools/execute_chapters.py     (scripts/build_book.sh runs it before the build)

``jupyter-book build`` (``execute_notebooks: cache``) executes the chapters one after another, and
a chapter is mostly one process on one core (the models train on one thread), so on a 2-core
machine one core waits. This runs the chapters that are not in the cache yet side by side, with
what myst-nb itself uses: jupyter-cache's ``single_nb_execution``, ``_config.yml``'s timeout and
allow_errors, the chapter's folder as working directory. Each executed chapter is stored in
``_build/.jupyter_cache``, where the build finds it ("Using cached notebook") instead of executing
it again. A chapter that fails is not stored: its traceback is printed and the script exits 1.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

import nbformat
import yaml
from jupyter_cache import get_cache
from jupyter_cache.base import CacheBundleIn
from jupyter_cache.executors.utils import single_nb_execution

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"  # jupyter-book's default execution cache
# The second kernel takes only a core nobody else needs: at nice 10 it gets about a tenth of a core
# another process wants. Alone (bash scripts/build_book.sh), two chapters run at a time; beside
# pytest (scripts/test.sh runs both lanes at once) the second kernel slows neither pytest nor the
# first kernel, and runs at full speed once a core is free (in a build that trains, after pytest).
EXTRA_NICENESS = 10
# The order chapters start in (the others follow in the book's order); it changes only the time.
# The ones that train the most go first: Chapter 2 (the encoder-decoder and the RNNsearch),
# Chapter 6 (its GPT) and Chapter 8 (nine small GPTs).
FIRST = ["book/02_bahdanau_attention.ipynb", "book/06_attention_and_llms.ipynb", "book/08_todays_llms.ipynb",
         "book/01_origin.ipynb", "book/07_transformer_on_dates.ipynb"]
# Chapter -> the chapter that trains a model it loads: it starts only once that one has finished,
# so that the model is trained once (Chapter 1: the encoder-decoder; Chapter 7: the RNNsearch).
NEEDS = {"book/01_origin.ipynb": "book/02_bahdanau_attention.ipynb",
         "book/07_transformer_on_dates.ipynb": "book/02_bahdanau_attention.ipynb"}


def chapters() -> list[str]:
    """The notebooks of ``_toc.yml`` that the build executes, in the order they start (``FIRST`` first)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    excluded = config["execute"].get("exclude_patterns", [])
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = [entry["file"] + ".ipynb" for part in toc["parts"] for entry in part["chapters"]]
    files = [f for f in files if (ROOT / f).is_file() and not any(Path("/" + f).match(p) for p in excluded)]
    return sorted(files, key=lambda f: FIRST.index(f) if f in FIRST else len(FIRST) + files.index(f))


def _worker_started(started) -> None:
    """Pool initializer: every worker after the first runs (with its kernels) at a lower priority."""
    with started.get_lock():
        index = started.value
        started.value += 1
    if index:
        os.nice(EXTRA_NICENESS)


def execute(path: Path, timeout: int, allow_errors: bool) -> tuple[nbformat.NotebookNode, float, str | None]:
    """Execute one chapter (absolute path) in its own folder, in a worker process: (notebook, seconds, error)."""
    nb = nbformat.read(path, as_version=4)
    result = single_nb_execution(nb, cwd=str(path.parent), timeout=timeout, allow_errors=allow_errors,
                                 meta_override=True)
    return nb, result.time, result.exc_string if result.err is not None else None


def main() -> int:
    settings = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["execute"]
    timeout, allow_errors = settings.get("timeout", 30), settings.get("allow_errors", False)
    cache = get_cache(str(CACHE))
    todo = []
    for path in chapters():
        try:
            cache.match_cache_notebook(nbformat.read(ROOT / path, as_version=4))
        except KeyError:
            todo.append(path)
    if not todo:
        print("== every chapter is in the execution cache already")
        return 0
    workers = min(len(todo), os.cpu_count() or 1)
    # One math-library thread per kernel: the kernels already share the cores, and the chapters'
    # small models gain nothing from a second thread (scripts/test.sh does the same).
    os.environ.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    print(f"== executing {len(todo)} chapter(s), {workers} at a time: {', '.join(Path(p).stem for p in todo)}",
          flush=True)
    failed = []
    start = time.perf_counter()
    pending, running = list(todo), {}
    with ProcessPoolExecutor(max_workers=workers, initializer=_worker_started,
                             initargs=(multiprocessing.Value("i", 0),)) as pool:
        while pending or running:
            busy = set(pending) | set(running.values())
            for path in [p for p in pending if NEEDS.get(p) not in busy][:workers - len(running)]:
                pending.remove(path)
                running[pool.submit(execute, ROOT / path, timeout, allow_errors)] = path
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for job in done:
                path = running.pop(job)
                nb, seconds, error = job.result()
                if error is not None:
                    failed.append(path)
                    print(f"!! {path} failed after {seconds:.0f} s:\n{error}", file=sys.stderr, flush=True)
                    continue
                cache.cache_notebook_bundle(CacheBundleIn(nb, str(ROOT / path), data={"execution_seconds": seconds}),
                                            check_validity=False, overwrite=True)
                print(f"   {path}: executed in {seconds:.0f} s", flush=True)
    print(f"== chapters executed in {time.perf_counter() - start:.0f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
