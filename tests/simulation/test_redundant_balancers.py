"""Redundant balancers as the lecture draws them: an active–passive pair whose
passive takes over after missed heartbeats (VRRP/keepalived), DNS round robin
that keeps sending a share to a dead entry, and sticky pins that live in the
user's cookie, so they survive a failover to the other balancer."""
from __future__ import annotations

import numpy as np
import pytest

from simulation.document import Document, NodeData
from simulation.engine import Simulation
from simulation.fileformat import load

from topologies import BIG_QUEUE, add_event

LESSONS = __import__("pathlib").Path(__file__).resolve().parents[2] / "resources" / "lessons"


def skew(priority: int) -> float:
    """VRRPv2 Skew_Time (RFC 3768 §6.1)."""
    return (256 - priority) / 256


def pair(rate: float = 1000.0, policy: str = "failover", *, sticky: bool = False, sessions: str = "cookie",
         users: int = 10_000, lb: dict | None = None, lb2: dict | None = None, servers: int = 2,
         seed: int = 1) -> Document:
    """users → lb, lb2 (both in front of the same servers)."""
    d = Document()
    d.add_node(NodeData("users", "client", params={"rate_rps": rate, "users": users, "entry_policy": policy}))
    common = {"capacity_rps": 10_000_000, "queue_limit": 1_000_000, "health_interval_s": 1.0,
              "affinity": "sticky" if sticky else "none"}
    d.add_node(NodeData("lb", "load_balancer", params={**common, **(lb or {})}))
    d.add_node(NodeData("lb2", "load_balancer", params={**common, **(lb2 or {})}))
    d.add_edge("users", "lb")
    d.add_edge("users", "lb2")
    for i in range(1, servers + 1):
        d.add_node(NodeData(f"web{i}", "server", params={"capacity_rps": 10 * rate, "workers": 8,
                                                         "sessions": sessions, **BIG_QUEUE}))
        d.add_edge("lb", f"web{i}")
        d.add_edge("lb2", f"web{i}")
    d.set_settings(seed=seed)
    return d


def sticky_lesson_with_a_pair() -> Document:
    """The built-in sticky-sessions lesson (local sessions, sticky round robin) with a
    second, passive balancer next to the first: the keepalived pair of the lecture."""
    d = load(LESSONS / "sticky_sessions.scalelab")
    while d.events:
        d.remove_event(0)
    d.add_node(NodeData("lb2", "load_balancer", params={"algorithm": "round_robin", "affinity": "sticky"}))
    d.add_edge("users", "lb2")
    for web in ("web1", "web2", "web3"):
        d.add_edge("lb2", web)
    d.set_params("users", {"entry_policy": "failover"})
    return d


def last_failing_tick(sim: Simulation, until: float) -> float:
    """Advance tick by tick; the end of the last tick in which a request failed."""
    last, seen = sim.now, sim.totals()["failed"]
    while sim.now < until - 1e-9:
        sim.step()
        failed = sim.totals()["failed"]
        if failed > seen:
            last, seen = sim.now, failed
    return last


def test_a_failover_to_the_passive_balancer_keeps_the_sticky_sessions():
    d = sticky_lesson_with_a_pair()
    add_event(d, 40.0, "fail", "lb")
    add_event(d, 100.0, "recover", "lb")
    sim = Simulation(d)
    sim.advance(150)
    t = sim.totals()
    # the pins travel in the users' cookies: the passive balancer sends everyone to their own server
    # (with a pin inside each balancer this lost ~800 sessions: every user was re-balanced twice)
    assert t["sessions_lost"] == 0
    # until the passive notices (3 × 1 s + (256 − 100)/256 s after the last heartbeat), requests fail
    mdi = 3 * 1.0 + skew(100)
    rate = 180.0
    lost = t["failed_by_cause"]["backend_down"]
    assert rate * (mdi - 1) * 0.85 < lost < rate * mdi * 1.15
    assert t["failed"] == lost                            # nothing else failed
    fails = sim.metrics.failed_rps
    assert fails[:40].sum() == 0 and fails[45:].sum() == 0   # rows are seconds 1..150
    assert fails[40:43].min() > 0.8 * rate                  # seconds 41–43: everything fails
    flow_lb, flow_lb2 = sim.metrics.flow[("users", "lb")], sim.metrics.flow[("users", "lb2")]
    assert flow_lb2[:40].sum() == 0                          # passive until then
    # the recovered active takes back over one Master_Down_Interval after it came up (preemption),
    # seamlessly: the passive served until then
    assert flow_lb[45:100].sum() == 0
    assert flow_lb[104:].sum() > 0 and flow_lb2[104:].sum() == 0
    assert flow_lb2[101:103].min() > 0.8 * rate


@pytest.mark.parametrize("advert,misses,priority", [(1.0, 3, 100), (0.2, 3, 200), (0.5, 5, 1)])
def test_detection_takes_misses_times_the_heartbeat_plus_skew(advert, misses, priority):
    hb = {"heartbeat_interval_s": advert, "heartbeat_misses": misses}
    d = pair(lb={**hb, "priority": 254}, lb2={**hb, "priority": priority})
    mdi = misses * advert + skew(priority)
    sim = Simulation(d)
    sim.advance(20)
    heartbeat = sim._pairs()["users"].anchor               # the active's heartbeats: anchor + k × advert
    k = np.ceil((sim.now - heartbeat) / advert)
    # right after a heartbeat, on the tick grid (where a run can stop exactly)
    t_fail = (np.floor((heartbeat + k * advert) / sim.tick_s + 1e-9) + 1) * sim.tick_s
    sim.run_until(t_fail)
    assert sim.now == pytest.approx(t_fail)
    sim.fail("lb")
    detected = last_failing_tick(sim, t_fail + mdi + 0.5) - t_fail
    assert detected == pytest.approx(mdi, abs=2 * sim.tick_s)
    assert sim.totals()["failed"] == pytest.approx(1000 * mdi, rel=0.1)


def test_the_delay_depends_on_when_the_last_heartbeat_was():
    # failures at four points of the heartbeat cycle: delays MDI − (time since the last heartbeat),
    # i.e. four values between MDI − advert and MDI, spread over 3/4 of an advert interval
    mdi = 3 + skew(100)
    delays = []
    for j in range(4):
        d = pair(rate=500)
        t_fail = 10.0 + j * 0.25
        add_event(d, t_fail, "fail", "lb")
        sim = Simulation(d)
        sim.advance(t_fail)
        delays.append(last_failing_tick(sim, t_fail + mdi + 0.5) - t_fail)
    tick = 0.01
    assert all(mdi - 1 - 2 * tick <= x <= mdi + 2 * tick for x in delays)
    assert max(delays) - min(delays) == pytest.approx(0.75, abs=2 * tick)


def test_an_active_that_comes_back_before_the_takeover_carries_on():
    d = pair(rate=200)
    add_event(d, 30.0, "fail", "lb")
    add_event(d, 31.0, "recover", "lb")
    sim = Simulation(d)
    sim.advance(60)
    assert sim.metrics.flow[("users", "lb2")].sum() == 0
    assert sim.totals()["failed"] == pytest.approx(200 * 1.0, rel=0.25)
    assert sim.metrics.failed_rps[31:].sum() == 0


def test_a_higher_priority_balancer_is_the_active_and_a_dead_pair_fails_everything():
    d = pair(rate=200, lb2={"priority": 150})
    add_event(d, 20.0, "fail", "lb2")
    add_event(d, 21.0, "fail", "lb")                        # before lb noticed: both dead
    add_event(d, 40.0, "recover", "lb")
    sim = Simulation(d)
    sim.advance(60)
    assert sim.metrics.flow[("users", "lb")][:20].sum() == 0   # lb2 outranks lb: it is the active
    fails = sim.metrics.failed_rps
    assert fails[20:40].min() > 0.8 * 200                     # the address is nobody's: everything fails
    # lb starts listening when it comes back and takes over after its own Master_Down_Interval
    takeover = 40 + 3 + skew(100)
    assert fails[44:].sum() == 0
    assert fails[20:44].sum() == pytest.approx(200 * (takeover - 20), rel=0.05)


def test_dns_round_robin_keeps_sending_a_share_to_a_dead_entry():
    d = pair(rate=400, policy="round_robin")
    add_event(d, 20.0, "fail", "lb")
    add_event(d, 60.0, "recover", "lb")
    sim = Simulation(d)
    sim.advance(80)
    m = sim.metrics
    share = m.failed_by_cause["backend_down"][20:60].sum() / m.offered_rps[20:60].sum()
    assert share == pytest.approx(0.5, abs=0.02)            # half of the users' lookups give the dead address
    per_second = m.failed_rps[20:60] / m.offered_rps[20:60]
    assert per_second.min() > 0.35                          # never learned: the share stays to the end
    assert m.failed_rps[:20].sum() == 0 and m.failed_rps[61:].sum() == 0


def test_two_sticky_balancers_read_the_same_cookie():
    # DNS round robin over two sticky balancers in front of servers with local sessions: a user's
    # requests alternate between the balancers, and both send them to the server in the cookie
    d = pair(rate=300, policy="round_robin", sticky=True, sessions="local", users=500, servers=3)
    sim = Simulation(d)
    sim.advance(60)
    assert sim.totals()["sessions_lost"] == 0
    loose = pair(rate=300, policy="round_robin", sessions="local", users=500, servers=3)
    loose_sim = Simulation(loose)
    loose_sim.advance(60)
    assert loose_sim.totals()["sessions_lost"] > 0.5 * loose_sim.totals()["arrived"]


def test_a_cookie_naming_a_dead_server_is_rewritten_once_for_both_balancers():
    d = pair(rate=300, sticky=True, sessions="local", users=600, servers=3,
             lb={"health_interval_s": 0.5, "unhealthy_after": 2}, lb2={"health_interval_s": 0.5, "unhealthy_after": 2})
    add_event(d, 20.0, "fail", "web1")
    add_event(d, 40.0, "fail", "lb")
    sim = Simulation(d)
    sim.advance(39)
    lost = sim.totals()["sessions_lost"]
    # web1's users (about a third) lose their session once, are redispatched and re-pinned
    assert lost == pytest.approx(600 / 3, rel=0.25)
    sim.advance(31)
    assert sim.totals()["sessions_lost"] == lost             # the passive reads the rewritten cookies
    assert sim.metrics.flow[("users", "lb2")][45:].min() > 0


def test_pairs_do_not_depend_on_how_the_run_is_sliced():
    def make():
        d = sticky_lesson_with_a_pair()
        add_event(d, 20.3, "fail", "lb")
        add_event(d, 40.0, "recover", "lb")
        add_event(d, 50.0, "fail", "web2")
        return Simulation(d)
    whole, steps, rand = make(), make(), make()
    whole.advance(60)
    for _ in range(60):
        steps.advance(1.0)
    rng = np.random.default_rng(7)
    while rand.now < 60 - 1e-9:
        rand.advance(min(float(rng.uniform(0.004, 3.0)), 60 - rand.now))
    assert whole.totals() == steps.totals() == rand.totals()
    for sim in (steps, rand):
        for edge in (("users", "lb"), ("users", "lb2")):
            np.testing.assert_array_equal(whole.metrics.flow[edge], sim.metrics.flow[edge])


def test_a_live_edit_keeps_the_active_balancer_and_the_cookies():
    d = sticky_lesson_with_a_pair()
    add_event(d, 20.0, "fail", "lb")
    sim = Simulation(d)
    sim.advance(30)
    assert sim.metrics.flow[("users", "lb2")][-3:].min() > 0
    edited = d.copy()
    edited.set_params("web2", {"capacity_rps": 120})
    sim.update_document(edited)
    sim.advance(20)
    t = sim.totals()
    assert t["sessions_lost"] == 0
    assert sim.metrics.flow[("users", "lb2")][-10:].min() > 0   # no second detection delay
    assert sim.metrics.failed_rps[25:].sum() == 0


def test_clients_behind_the_same_pair_see_the_same_takeover():
    d = pair(rate=300)
    d.add_node(NodeData("mobile", "client", params={"rate_rps": 200, "users": 500, "entry_policy": "failover"}))
    d.add_edge("mobile", "lb")
    d.add_edge("mobile", "lb2")
    add_event(d, 20.0, "fail", "lb")
    sim = Simulation(d)
    sim.advance(20)
    fails = last_failing_tick(sim, 25.0)
    # one virtual address: both groups of users fail until the same moment, then both reach lb2
    assert fails - 20 == pytest.approx(3 + skew(100), abs=1.0 + 2 * sim.tick_s)
    web_flow = {c: sim.metrics.flow[(c, "lb2")] for c in ("users", "mobile")}
    first = {c: int(np.nonzero(f > 0)[0][0]) for c, f in web_flow.items()}
    assert first["users"] == first["mobile"]
    t = sim.totals()
    assert t["failed"] == pytest.approx(500 * (fails - 20), rel=0.1)


def test_two_sticky_balancers_pin_each_new_user_in_turn_at_the_balancer_that_gets_its_first_request():
    # DNS round robin over two sticky round-robin balancers: a user is dispatched once, by the
    # balancer that gets their first request, in that balancer's turn (HAProxy's cookie insert);
    # recounted from the traces alone
    d = pair(rate=400, policy="round_robin", sticky=True, users=300, servers=3,
             lb={"algorithm": "round_robin"}, lb2={"algorithm": "round_robin"})
    sim = Simulation(d)
    sim.trace_every(1, cap=10**6)
    sim.advance(5)
    first: dict[int, tuple] = {}
    served_at: dict[int, set] = {}
    for tr in sorted(sim.traces(), key=lambda t: (t.hops[0].end_s, t.key)):
        if len(tr.hops) < 2:
            continue
        lb, server = tr.hops[0].node, tr.hops[1].node
        first.setdefault(tr.user, (lb, server))
        served_at.setdefault(tr.user, set()).add(server)
    assert all(len(s) == 1 for s in served_at.values())   # pinned
    order = {b: [s for s in ("web1", "web2", "web3")] for b in ("lb", "lb2")}
    turn = {"lb": 0, "lb2": 0}
    by_time = sorted(first.items(), key=lambda kv: min(t.hops[0].end_s for t in sim.traces()
                                                     if t.user == kv[0] and len(t.hops) > 1))
    for user, (lb, server) in by_time:
        assert server == order[lb][turn[lb] % 3], user
        turn[lb] += 1
    assert min(turn.values()) > 100


@pytest.mark.parametrize("fail", [False, True], ids=["all up", "a server fails"])
def test_two_sticky_balancers_give_the_same_numbers_whatever_the_tick(fail):
    # they decided tick by tick: after web2 failed, a user's requests at both balancers in one
    # tick were redispatched in the balancers' order, not in time order, so the numbers changed
    # with tick_ms (random file 30); the two balancers check health at different times, so for
    # a while they disagree on whether web2 is up
    def run(tick_ms):
        d = pair(rate=400, policy="round_robin", sticky=True, sessions="local", users=30, servers=3,
                 lb={"algorithm": "weighted_round_robin", "health_interval_s": 0.5},
                 lb2={"algorithm": "consistent_hash", "health_interval_s": 1.5}, seed=30)
        if fail:
            add_event(d, 2.2, "fail", "web2")
        d.set_settings(tick_ms=tick_ms)
        sim = Simulation(d)
        sim.advance(6)
        return sim.totals(), {e: list(f) for e, f in sim.metrics.flow.items()}
    one = run(1.0)
    assert one == run(10.0) == run(20.0)
    assert one[0]["served"] > 2000 and (one[0]["sessions_lost"] > 0) == fail
