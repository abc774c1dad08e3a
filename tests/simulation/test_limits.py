"""The engine at the limits of the file format: every loop ends, balancers with thousands of
backends distribute as their algorithm says, and compiling grows linearly with the network."""
from __future__ import annotations

import sys

import numpy as np
import pytest

from simulation.compiler import compile_document
from simulation.dispatch import _fill_least, smooth_wrr_sequence
from simulation.document import Document, NodeData
from simulation.engine import Simulation

ALGORITHMS = ("random", "round_robin", "weighted_round_robin", "least_connections", "least_response_time",
              "power_of_two", "consistent_hash")


def _balanced(groups: list[tuple[int, float]], algorithm: str, rate: float, users: int = 100_000) -> Document:
    """Client → balancer → one server node per (replicas, capacity) group."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users}))
    d.add_node(NodeData("lb", "load_balancer", params={"algorithm": algorithm, "capacity_rps": 10_000_000,
                                                       "queue_limit": 1_000_000,
                                                       "health_check_cost_ms": 0}))   # counters: users only
    d.add_edge("users", "lb")
    for g, (replicas, capacity) in enumerate(groups):
        d.add_node(NodeData(f"web{g}", "server", params={"replicas": replicas, "capacity_rps": capacity,
                                                         "workers": 1, "queue_limit": 10}))
        d.add_edge("lb", f"web{g}")
    d.set_settings(seed=4, duration_s=10)
    return d


def _admitted(sim: Simulation) -> np.ndarray:
    """Requests each backend replica of the balancer admitted (the stations' own counters)."""
    return sim.stations.count[sim.net.balancers[0].backends]


# ----- the integer split of weighted round robin ---------------------------------------------------
@pytest.mark.parametrize("n", [1, 999, 1000, 1001, 5000, 50_000, 200_000])
def test_wrr_split_ends_and_keeps_equal_weights_equal(n):
    seq = smooth_wrr_sequence(np.full(n, 100.0))
    assert len(seq) == n and sorted(seq.tolist()) == list(range(n))     # one turn each, in one period


@pytest.mark.parametrize("n", [1001, 20_000])
def test_wrr_split_of_many_backends_keeps_their_weights(n):
    rng = np.random.default_rng(1)
    weights = rng.choice([100.0, 200.0, 300.0], size=n)
    seq = smooth_wrr_sequence(weights)
    turns = np.bincount(seq, minlength=n)
    # weights 1:2:3 fit (sum ≤ 4n): every backend gets exactly its weight in turns
    assert (turns == np.round(weights / 100)).all()
    # smooth: a backend's turns are spread over the period (gaps of about period / weight),
    # not bunched (a plain weighted round robin would give a backend its turns in a row)
    period = len(seq)
    order = np.argsort(seq, kind="stable")                   # positions of each backend's turns
    first = np.r_[0, np.cumsum(turns)[:-1]]
    for b in np.nonzero(turns >= 2)[0][:200]:
        pos = np.sort(order[first[b]:first[b] + turns[b]])
        gaps = np.diff(np.r_[pos, pos[0] + period])
        assert gaps.min() >= period / turns[b] / 2 and gaps.max() <= period / turns[b] * 2


def test_wrr_split_of_extreme_weights_ends():
    # capacities 1e-6 and 1e6 (ratio 1e12): the halving loop is bounded by the sum of ones
    seq = smooth_wrr_sequence(np.r_[np.full(3000, 1e-6), [1e6]])
    assert len(seq) <= 4 * 3001 and set(seq.tolist()) == set(range(3001))
    assert np.bincount(seq)[-1] == seq.size - 3000      # the big one gets every other turn


def _fill_least_reference(load, cost, u):
    """The greedy fill one request at a time, in plain Python (the definition)."""
    load = [float(x) for x in load]
    out = []
    for ui in u:
        scores = [(x + 1.0) * c for x, c in zip(load, cost)]
        tied = [i for i, sc in enumerate(scores) if sc == min(scores)]
        pick = tied[min(int(ui * len(tied)), len(tied) - 1)]
        out.append(pick)
        load[pick] += 1.0
    return np.array(out)


@pytest.mark.parametrize("n,m", [(1, 1), (1, 500), (2, 499), (7, 7), (7, 50), (300, 299)])
def test_fill_least_is_the_greedy_fill(n, m):
    rng = np.random.default_rng(n * 31 + m)
    load = rng.integers(0, 4, n).astype(float)
    cost = rng.choice([1.0, 0.25, 2.0], n)
    u = rng.random(m)
    got = _fill_least(load, cost, u)
    assert (got == _fill_least_reference(load, cost, u.tolist())).all()
    # and it is least-loaded: after the fill, (load + placed) × cost differ by at most one step
    placed = np.bincount(got, minlength=n)
    if n > 1 and (cost == 1).all():
        assert (load + placed).max() - (load + placed).min() <= max(1, load.max() - load.min())


def test_fill_least_sends_nothing_to_a_loaded_backend_while_another_is_idle():
    # loads [0, 5], 4 requests: the idle one takes them all (its count reaches 4 < 5)
    assert _fill_least(np.array([0.0, 5.0]), np.ones(2), np.full(4, 0.99)).tolist() == [0, 0, 0, 0]


# ----- balancers with 5,000 backends -----------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_balancer_with_5000_backends_distributes(algorithm):
    # 5,000 backends of 1 req/s at 80 % load: each holds a request or two, so the
    # load-aware algorithms have something to look at
    sim = Simulation(_balanced([(5000, 1.0)], algorithm, rate=4000.0))
    sim.advance(3.0)
    got = _admitted(sim)
    assert got.sum() == sim.arrived > 11_000            # every request reached a backend (capacity 1e7)
    assert sim.arrived == sim.served + sim.failed + sim.in_flight
    ratio = got.var() / got.mean()
    if algorithm in ("round_robin", "weighted_round_robin"):
        assert got.max() - got.min() <= 1                # the k-th request to backend k mod n
    elif algorithm == "random":
        assert 0.85 < ratio < 1.15                       # Poisson counts: variance = mean (± ~0.03 here)
    elif algorithm == "consistent_hash":
        # by user: a user's requests land together, so a little more spread than Poisson
        assert 0.85 < ratio < 1.35
    elif algorithm in ("least_connections", "power_of_two"):
        assert ratio < 0.7                               # far more even than random
    else:   # least_response_time follows each backend's recent latency, itself random
        assert ratio < 2.0 and (got > 0).mean() > 0.8


def test_weighted_round_robin_over_5000_backends_follows_capacity():
    sim = Simulation(_balanced([(2500, 100.0), (2500, 300.0)], "weighted_round_robin", rate=10_000.0))
    sim.advance(2.0)
    got = _admitted(sim)
    share_fast = got[2500:].sum() / got.sum()
    assert share_fast == pytest.approx(0.75, abs=0.005)          # weights 1 : 3
    assert got[:2500].max() - got[:2500].min() <= 1 and got[2500:].max() - got[2500:].min() <= 1


# ----- compiling is near-linear ------------------------------------------------------------------------
def _many_servers(n: int) -> Document:
    d = Document()
    d.add_node(NodeData("users", "client"))
    d.add_node(NodeData("lb", "load_balancer"))
    d.add_node(NodeData("db", "database"))
    d.add_edge("users", "lb")
    for i in range(n):
        d.add_node(NodeData(f"s{i}", "server", params={"sessions": "database"}))
        d.add_edge("lb", f"s{i}")
        d.add_edge(f"s{i}", "db")
    return d


def _calls(fn) -> int:
    """Python and C function calls made by fn() (a measure of work that does not depend on the machine)."""
    count = 0

    def prof(frame, event, arg):
        nonlocal count
        if event in ("call", "c_call"):
            count += 1

    sys.setprofile(prof)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return count


def test_compiling_grows_linearly_with_nodes_and_edges():
    small, big = _many_servers(500), _many_servers(2000)
    ratio = _calls(lambda: compile_document(big)) / _calls(lambda: compile_document(small))
    assert ratio < 4.6, ratio           # 4× the nodes and edges: linear is 4, quadratic 16


def test_document_successors_and_building_grow_linearly():
    ratio = _calls(lambda: _many_servers(2000)) / _calls(lambda: _many_servers(500))
    assert ratio < 4.6, ratio
    d = _many_servers(50)
    d.remove_edge("lb", "s3")
    d.add_edge("lb", "s3")                                  # a new edge comes last in edge order
    assert d.successors("lb")[-1] == "s3" and d.successors("lb")[:3] == ["s0", "s1", "s2"]
    assert d.predecessors("db") == [f"s{i}" for i in range(50)]


def test_twenty_thousand_nodes_compile_and_run():
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": 200.0}))
    for i in range(19_999):
        d.add_node(NodeData(f"s{i}", "server", params={"queue_limit": 10}))
        d.add_edge("users", f"s{i}")
    sim = Simulation(d)
    sim.advance(2.0)
    assert sim.arrived == sim.served + sim.failed + sim.in_flight
    assert sum(v for v in sim.edge_flows().values()) == pytest.approx(sim.metrics.offered_rps[-1])
    assert not any(isinstance(v, np.ndarray) and v.ndim == 2 and v.shape[0] >= 19_999 and v.shape[1] >= 19_999
                   for v in vars(sim).values())                  # no N × N matrix
