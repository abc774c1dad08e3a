"""Independent runs on every core: a process pool for compare, sweep and the empirical SPOF runs.

Each task is a top-level function and its arguments (documents pickle); it runs in a
fresh worker process ('forkserver' where the platform has it, else 'spawn': never
'fork', which is unsafe once Qt is loaded). Tasks report progress through a queue
(:func:`report`); the caller gets the results in task order, so the numbers are those
of a serial run (every run is a pure function of its document, seed and duration).

Stopping: workers ignore SIGINT (a Ctrl-C in a terminal reaches the whole process
group; the parent decides). When the parent is interrupted (KeyboardInterrupt, or
``outputs.Stopped`` from SIGTERM) or a task fails, the workers are terminated and
joined before the exception goes on, so no process is left behind. When that process
dies without stopping them (SIGKILL, a crash), each worker notices within a second and
exits (then the fork server does). ``jobs == 1`` (or a single task) runs in this
process, as before. A ``cancel`` callback stops the
workers the same way (the designer's Load test: its worker thread only waits here,
so the window keeps the GIL to itself while the simulations run in other processes).
The designer calls :func:`prepare` when a dialog that will use workers opens.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import queue as queue_mod
import signal
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any, Callable, Sequence

Task = tuple[Callable[..., Any], tuple]
POLL_S = 0.1              # how often the parent looks at the progress queue and the futures
OWNER_POLL_S = 1.0        # how often a worker looks whether the process it works for is still there

class Cancelled(Exception):
    """The run was cancelled (the caller's cancel callback answered true)."""


_queue: Any = None        # in a worker: where report() sends (task, done)
_task: int = -1           # in a worker: the index of the task being run


def cpu_count() -> int:
    """The cores this process may use (``os.process_cpu_count`` on Python ≥ 3.13)."""
    counter = getattr(os, "process_cpu_count", None)
    if counter is not None:
        return max(1, counter() or 1)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


_PRELOAD = ["numpy", "simulation.engine", "simulation.variant_run"]
_kernels_in_server = False


def _context() -> Any:
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD + (["simulation.kernel_preload"] if _kernels_in_server else []))
        return ctx
    return mp.get_context("spawn")


def prepare(kernels: bool = True) -> None:
    """Start the fork server now, so that it imports the engine while the user sets up the runs
    (the first pool then starts in ~0.1 s instead of ~1.5 s). With ``kernels`` it also loads the
    compiled kernels once, and every worker of every later pool starts with them (0.3–0.4 s less
    per worker): worth it in a process that starts many pools (the designer), not in a command
    that starts one (its two workers load what they use at once, sooner than the server loads
    all). Takes effect only before the server's first start; returns at once; never raises."""
    global _kernels_in_server
    try:
        from multiprocessing import forkserver
        if kernels and not _kernels_in_server and getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
            _kernels_in_server = True
        if "forkserver" in mp.get_all_start_methods():
            _context()                      # sets the server's preload list (kernels or not)
            forkserver.ensure_running()
    except Exception:   # noqa: BLE001 - the first pool starts the server itself
        pass


def _init(q: Any, owner: int) -> None:
    global _queue
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _queue = q
    threading.Thread(target=_watch_owner, args=(owner,), daemon=True, name="scalelab: owner").start()


def _watch_owner(owner: int) -> None:
    """In a worker, for its lifetime: exit when the process that asked for the runs is gone.

    A worker's parent is the fork server, not that process; when it dies without stopping its
    workers (SIGKILL, a crash, a desktop session closed), nobody reads the results and the
    worker would wait on its queue forever, keeping its memory and the fork server alive."""
    while True:
        time.sleep(OWNER_POLL_S)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            os._exit(1)
        except OSError:     # EPERM: the pid now belongs to another user's process
            os._exit(1)


def _call(index: int, fn: Callable[..., Any], args: tuple) -> Any:
    global _task
    _task = index
    try:
        return fn(*args)
    finally:
        _task = -1


def report(done: float) -> None:
    """From inside a task: ``done`` units of it are finished (no-op outside a worker)."""
    if _queue is not None and _task >= 0:
        try:
            _queue.put_nowait((_task, float(done)))
        except (OSError, ValueError, queue_mod.Full):
            pass


def run_tasks(tasks: Sequence[Task], jobs: int, sizes: Sequence[float] | None = None,
              progress: Callable[[float], None] | None = None,
              done: Callable[[int, Any], None] | None = None,
              serial: Callable[[int, Callable[[float], None]], Any] | None = None,
              cancel: Callable[[], bool] | None = None) -> list[Any]:
    """Run ``tasks`` on up to ``jobs`` processes; the results in task order.

    ``sizes[i]`` is task i's size in progress units; ``progress(total_done)`` sums what
    all tasks reported. ``done(i, result)`` is called in task order as results become
    available. ``serial(i, report)`` runs task i in this process (used when ``jobs``
    is 1 or there is only one task); it must report progress itself. The first task
    to fail raises its exception here, after the other workers are stopped. With workers,
    ``cancel()`` is asked every ``POLL_S``: when it answers true the workers are stopped
    and :class:`Cancelled` is raised. One after the other, it is asked before each task
    (within a task, cancelling is left to ``serial``)."""
    n = len(tasks)
    sizes = list(sizes) if sizes is not None else [1.0] * n
    jobs = max(1, min(int(jobs), n))
    ctx = q = pool = None
    if jobs > 1:
        try:
            ctx = _context()
            q = ctx.Queue()
            pool = ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_init, initargs=(q, os.getpid()))
        except (OSError, ImportError, ValueError):   # no semaphores here (e.g. no /dev/shm): one at a time
            jobs = 1
    if jobs == 1 or pool is None:
        out: list[Any] = []
        for i in range(n):
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            base = sum(sizes[:i])
            report_i = (lambda d, base=base: progress(base + d)) if progress else (lambda d: None)
            result = serial(i, report_i) if serial is not None else tasks[i][0](*tasks[i][1])
            out.append(result)
            if progress:
                progress(base + sizes[i])
            if done is not None:
                done(i, result)
        return out
    results: dict[int, Any] = {}
    shown = 0
    reached = [0.0] * n
    try:
        futures: dict[Future, int] = {pool.submit(_call, i, fn, args): i for i, (fn, args) in enumerate(tasks)}
        pending = set(futures)
        while pending:
            if cancel is not None and cancel():
                raise Cancelled("cancelled")
            finished, pending = wait(pending, timeout=POLL_S, return_when=FIRST_COMPLETED)
            _drain(q, reached, sizes)
            for f in finished:
                i = futures[f]
                results[i] = f.result()          # a task's exception is raised here
                reached[i] = sizes[i]
            if progress:
                progress(sum(reached))
            while shown < n and shown in results:
                if done is not None:
                    done(shown, results[shown])
                shown += 1
    except BaseException:
        _stop(pool)
        raise
    finally:
        q.close()
        q.cancel_join_thread()
    pool.shutdown(wait=True)
    return [results[i] for i in range(n)]


def _drain(q: Any, reached: list[float], sizes: list[float]) -> None:
    for _ in range(10_000):     # bounded: at most what arrived since the last look
        try:
            i, d = q.get_nowait()
        except (queue_mod.Empty, OSError, ValueError, EOFError):
            return
        if 0 <= i < len(reached):
            reached[i] = max(reached[i], min(d, sizes[i]))


def _stop(pool: ProcessPoolExecutor) -> None:
    """Terminate and join every worker (the pool has no public way to before Python 3.14)."""
    processes = list(getattr(pool, "_processes", {}).values() or [])
    for p in processes:
        try:
            p.terminate()
        except (OSError, AttributeError, ValueError):
            pass
    for p in processes:
        try:
            p.join(timeout=5.0)
            if p.is_alive():
                p.kill()
                p.join(timeout=5.0)
        except (OSError, AttributeError, ValueError, AssertionError):
            pass
    pool.shutdown(wait=True, cancel_futures=True)
