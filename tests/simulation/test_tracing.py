"""Following sampled requests (simulation/tracing.py): hop times that add up to
the latency the engine books, failures with their cause, a sampling rate of 1/N,
a bounded store, and numbers that do not change when tracing is on."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from simulation.document import NodeData
from simulation.engine import Simulation
from simulation.fileformat import load

from topologies import add_event, balanced, saturated_sync_tier, single_queue

LESSONS = Path(__file__).parents[2] / "resources" / "lessons"


def _lb_doc(rate: float, seed: int = 3):
    """Client → balancer (1 ms, deterministic) → one server (10 ms, deterministic), free health checks."""
    from simulation.document import Document
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": 1000}))
    d.add_node(NodeData("lb", "load_balancer", params={"capacity_rps": 1000, "queue_limit": 1_000_000,
                                                         "timeout_s": 3600, "health_check_cost_ms": 0}))
    d.add_node(NodeData("web", "server", params={"capacity_rps": 100, "workers": 1, "service": "deterministic",
                                                  "queue_limit": 1_000_000, "timeout_s": 3600}))
    d.add_edge("users", "lb")
    d.add_edge("lb", "web")
    d.set_settings(seed=seed)
    return d


def test_hop_times_add_up_to_the_booked_latency():
    sim = Simulation(_lb_doc(20.0))
    sim.trace_every(1, cap=100_000)
    sim.advance(60.0)
    traces = sim.traces()
    answered = [t for t in traces if t.outcome == "answered"]
    assert len(answered) == sim.totals()["served"] > 1000
    for t in answered:
        assert [h.node for h in t.hops] == ["lb", "web"]
        lb, web = t.hops
        assert lb.outcome == "forwarded" and lb.to == "web" and web.outcome == "answered"
        for h in t.hops:
            assert h.arrived_s <= h.start_s <= h.end_s
            assert h.service_ms == pytest.approx(1.0 if h.node == "lb" else 10.0, abs=1e-5)
        assert web.arrived_s == lb.end_s                 # no delay on the wire
        assert lb.arrived_s == t.birth_s
        assert t.latency_ms == pytest.approx(sum(h.wait_ms + h.service_ms for h in t.hops), abs=1e-6)
    # the mean over every request equals the engine's own mean latency
    assert np.mean([t.latency_ms for t in answered]) == pytest.approx(sim.totals()["mean_ms"], rel=1e-9)
    # independent check of the waits: Lindley's recursion over the arrivals at the server
    arr = np.array([t.hops[1].arrived_s for t in answered])
    order = np.argsort(arr)
    arr = arr[order]
    waits = np.zeros(len(arr))
    for k in range(1, len(arr)):
        waits[k] = max(0.0, waits[k - 1] + 0.010 - (arr[k] - arr[k - 1]))
    got = np.array([answered[i].hops[1].wait_ms for i in order]) / 1000.0
    np.testing.assert_allclose(got, waits, atol=1e-6)
    idle = [answered[i] for i in order[waits == 0]]
    assert len(idle) > 0.7 * len(answered)               # at 20 % load most find the server idle
    for t in idle:
        if t.hops[0].wait_ms == 0:
            assert t.latency_ms == pytest.approx(11.0, abs=1e-5)   # 1 ms balancer + 10 ms service


def test_request_sent_to_a_failed_server_shows_backend_down():
    d = balanced(200.0, 2, 1000.0, "round_robin", interval=2.0, fall=3)
    add_event(d, 5.0, "fail", "web2")
    sim = Simulation(d)
    sim.trace_every(1, cap=100_000)
    sim.advance(12.0)
    down = [t for t in sim.traces() if t.cause == "backend_down"]
    assert len(down) == sim.totals()["failed_by_cause"]["backend_down"] > 0
    for t in down:
        last = t.hops[-1]
        assert last.node == "web2" and last.outcome == "failed" and last.start_s is None
        assert t.hops[-2].to == "web2" and 5.0 <= t.end_s < 5.0 + 3 * 2.0 + 1e-9
    # after the balancer took web2 out, everything goes to web1
    late = [t for t in sim.traces() if t.birth_s > 11.5 and t.outcome == "answered"]
    assert late and all(t.hops[-1].node == "web1" for t in late)


def test_requests_in_service_when_their_node_fails_are_cut_short():
    d = single_queue(90.0, 100.0, workers=10, seed=5)   # about 9 requests in service at any time
    add_event(d, 4.0, "fail", "web")
    sim = Simulation(d)
    sim.trace_every(1, cap=100_000)
    sim.advance(6.0)
    lost = [t for t in sim.traces() if t.cause == "node_failed"]
    assert len(lost) == sim.totals()["failed_by_cause"]["node_failed"] > 0
    for t in lost:
        h = t.hops[-1]
        assert h.end_s == pytest.approx(4.0) and h.arrived_s <= 4.0
        assert h.start_s is None or h.start_s <= 4.0


@pytest.mark.parametrize("n", [7, 50])
def test_sampling_rate_is_one_in_n(n):
    sim = Simulation(single_queue(2000.0, 10_000.0, workers=4))
    sim.trace_every(n, cap=1_000_000)
    sim.advance(20.0)
    arrived = sim.totals()["arrived"]
    sampled = len(sim.traces())
    p = 1.0 / n
    assert abs(sampled - arrived * p) < 5 * np.sqrt(arrived * p * (1 - p))
    assert all(t.key % n == 0 for t in sim.traces())
    # the same requests in a second run of the same seed
    again = Simulation(single_queue(2000.0, 10_000.0, workers=4))
    again.trace_every(n, cap=1_000_000)
    again.advance(20.0)
    assert [t.key for t in again.traces()] == [t.key for t in sim.traces()]


def test_store_is_bounded_by_its_cap():
    sim = Simulation(single_queue(100_000.0, 1_000_000.0, workers=1))
    sim.trace_every(1)          # every request, the default cap of 1,000
    sim.advance(10.0)
    assert sim.totals()["arrived"] >= 990_000
    traces = sim.traces()
    assert len(traces) == 1000
    births = np.array([t.birth_s for t in traces])
    assert births.min() > 9.9                 # the most recent ones were kept
    assert all(len(t.hops) == 1 for t in traces)


def _totals(doc, every):
    sim = Simulation(doc)
    if every:
        sim.trace_every(every)
    sim.advance(40.0)
    return json.dumps(sim.totals(), sort_keys=True, default=str), json.dumps(
        {k: list(np.asarray(v, dtype=float)) for k, v in (("served", sim.metrics.served_rps),
                                                          ("p95", sim.metrics.p95_ms))}, default=str)


@pytest.mark.parametrize("lesson", ["lb_demo", "database_scaling", "sticky_sessions", "sharding"])
def test_totals_identical_with_tracing_on_and_off(lesson):
    doc = load(LESSONS / f"{lesson}.scalelab")
    off = _totals(doc, 0)
    assert _totals(load(LESSONS / f"{lesson}.scalelab"), 1) == off
    assert _totals(load(LESSONS / f"{lesson}.scalelab"), 5) == off


def test_bad_interval_is_refused_with_a_message():
    sim = Simulation(single_queue(10.0, 100.0))
    with pytest.raises(ValueError, match="trace_every"):
        sim.trace_every(-3)
    sim.trace_every(3)
    assert sim.tracing == 3
    sim.trace_every(None)
    assert sim.tracing == 0 and sim.traces() == []


def _blocking_doc():
    d = balanced(150.0, 2, 120.0, "least_connections", database=True, workers=4)
    for web in ("web1", "web2"):
        d.set_params(web, {"blocking_calls": True})
    add_event(d, 8.0, "fail", "web1")
    return d


def test_blocking_servers_same_totals_and_consistent_hops():
    off = Simulation(_blocking_doc())
    off.advance(15.0)
    on = Simulation(_blocking_doc())
    on.trace_every(2, cap=100_000)
    on.advance(15.0)
    assert json.dumps(on.totals(), default=str) == json.dumps(off.totals(), default=str)
    answered = [t for t in on.traces() if t.outcome == "answered"]
    assert answered
    for t in answered:
        assert [h.node for h in t.hops][0] == "lb" and t.hops[-1].node == "db"
        for a, b in zip(t.hops, t.hops[1:]):
            assert a.outcome == "forwarded" and a.to == b.node and b.arrived_s == a.end_s
        assert t.latency_ms == pytest.approx(sum(h.wait_ms + h.service_ms for h in t.hops), abs=1e-6)


def test_a_request_waiting_undecided_at_a_blocking_server_is_shown_queueing_there():
    """Before 2026-12-01 such a request had no hop at the blocking server until its turn
    was decided (seconds later when saturated): its dot vanished from the canvas and its
    timeline said it was still at the previous node. Now it queues there, and once decided
    the hop is replaced by the real one (tests/designer/test_follow_request.py: the timeline
    says "waiting for a worker")."""
    for env in ("1", "0"):   # the event window, and the sweeps
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("SCALELAB_BLOCKING_EVENTS", env)
            sim = Simulation(saturated_sync_tier())
            sim.trace_every(1, cap=10**6)
            undecided_seen = 0
            for t in np.arange(0.5, 10.01, 0.5):
                sim.run_until(float(t))
                traces = {tr.key: tr for tr in sim.traces()}
                for lv, p in enumerate(sim.pending):
                    for key, st, start in zip(p.key.tolist(), p.st.tolist(), p.start.tolist()):
                        node = sim.net.node_ids[int(sim.net.st_node[st])]
                        last = traces[key].hops[-1]
                        assert last.node == node and last.outcome == "in_flight"
                        assert last.status_at(sim.now) in ("queueing", "in_service")
                        if not np.isfinite(start):
                            undecided_seen += 1
                            assert last.undecided and last.status_at(sim.now) == "queueing"
            assert undecided_seen > 100   # the shape this is about
            for tr in sim.traces():   # one hop per station reached, decided ones as they were
                assert all(a.node != b.node for a, b in zip(tr.hops, tr.hops[1:]))
                assert all(not h.undecided or h.outcome == "in_flight" or h.outcome == "failed" for h in tr.hops)
                for h in tr.hops[:-1]:
                    assert not h.undecided and h.outcome == "forwarded"


def test_the_undecided_requests_remembered_stay_within_the_cap():
    """The tracer remembers which traces wait undecided (so the sweeps, which put them
    back again and again, add each once): never more than the traces it keeps."""
    sim = Simulation(saturated_sync_tier())
    sim.trace_every(1, cap=50)
    for t in range(1, 11):
        sim.run_until(float(t))
        tracer = sim._tracer
        assert len(tracer.traces) <= 50
        assert tracer._undecided <= set(tracer.traces)
        assert tracer._undecided == {k for k, tr in tracer.traces.items() if tr.hops and tr.hops[-1].undecided
                                     and tr.hops[-1].outcome == "in_flight"}
