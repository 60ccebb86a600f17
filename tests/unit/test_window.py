"""Window strategies against hand-worked cases. Steps k = 0 (noisiest) … K−1."""
import numpy as np
import pytest

from adascope_ray.config import WindowConfig
from adascope_ray.core.window import (STRATEGIES, WindowInputs, adascope_bounds, adascope_window, fraction_window,
                                      full_window, random_window, select_window, sliding_window)

K = 10
S = np.array([0.1, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.97, 1.0])
C = np.array([0.5, 0.6, 0.7, 0.8, 0.96, 0.96, 0.97, 0.98, 0.99, 1.0])
D_SLOW = np.full(K, 0.5)
RULE = dict(k_lo=0, k_hi=K, tau_s=0.5, tau_e=0.95, eps_conv=0.02, w_min=2, w_max=3)


def rows(mask):
    return [np.nonzero(r)[0].tolist() for r in mask]


def test_full_and_fraction():
    assert full_window(2, 4).mask.all()
    sel = fraction_window(3, K, 0.25, np.random.default_rng(0))
    assert (sel.length == 2).all()                     # floor(0.25 * 10) = 2 per sample
    assert fraction_window(1, K, 0.01, np.random.default_rng(0)).length.tolist() == [1]  # at least one


def test_random_window_is_contiguous_and_in_range():
    for seed in range(20):
        sel = random_window(2, K, 3, (2, 5), np.random.default_rng(seed))
        r = rows(sel.mask)
        assert r[0] == r[1] and len(r[0]) == 3
        assert 2 <= r[0][0] <= 5 and r[0] == list(range(r[0][0], r[0][0] + 3))


@pytest.mark.parametrize("it,expected", [(0, [2, 3, 4]), (4, [2, 3, 4]), (5, [3, 4, 5]), (100, [7, 8, 9])])
def test_sliding(it, expected):
    # size 3, starts at 2, moves 1 step every 5 iterations, stops at K − size = 7
    assert rows(sliding_window(1, K, 3, it, start=2, every=5, stride=1).mask) == [expected]


def test_adascope_start_and_semantic_end():
    # k_s: first S ≥ .5 is k=3. End may fire from k_s + w_min = 5: C[5] = .96 ≥ .95 → k_e = 5
    assert adascope_bounds(S, C, D_SLOW, **RULE) == (3, 5)


def test_adascope_w_max_clamps():
    c = np.full(K, 0.1)  # never semantically done: end = k_s + w_max = 3 + 3
    assert adascope_bounds(S, c, D_SLOW, **RULE) == (3, 6)


def test_adascope_prior_lo_and_hi():
    assert adascope_bounds(S, np.zeros(K), D_SLOW, **{**RULE, "k_lo": 5, "w_max": 9}) == (5, 10)
    assert adascope_bounds(S, np.zeros(K), D_SLOW, **{**RULE, "k_hi": 6, "w_max": 9}) == (3, 6)
    # k_hi = 4 is inside w_min of k_s = 3: the window still gets its w_min = 2 steps
    assert adascope_bounds(S, np.zeros(K), D_SLOW, **{**RULE, "k_hi": 4, "w_max": 9}) == (3, 5)


def test_adascope_prior_never_closes_the_window():
    # k_hi = 0 (huge final-latent variance) would leave nothing; it is raised to k_s + w_min = 2.
    # S ≥ .5 from k = 0 here, so the group trains on [0, 2)
    assert adascope_bounds(np.ones(K), np.zeros(K), D_SLOW, **{**RULE, "k_hi": 0}) == (0, 2)
    # k_hi = 2 before k_s = 3 (the layout forms after the prior's "details formed"): still
    # w_min = 2 steps from k_s, [3, 5), where the rule used to give the empty (3, 3)
    assert adascope_bounds(S, np.zeros(K), D_SLOW, **{**RULE, "k_hi": 2}) == (3, 5)
    # k_lo pushes k_s to K - 1: the window is what is left, one step
    assert adascope_bounds(S, np.zeros(K), D_SLOW, **{**RULE, "k_lo": K - 1, "k_hi": 0}) == (K - 1, K)


def test_adascope_convergence_end():
    d = np.array([np.inf, .3, .2, .1, .05, .04, .01, .01, .01, 0])  # D < .02 first at k=6
    assert adascope_bounds(S, np.zeros(K), d, **{**RULE, "w_max": 9}) == (3, 6)


def test_adascope_w_min_delays_end():
    c = np.ones(K)  # semantically done everywhere: end at k_s + w_min
    assert adascope_bounds(S, c, D_SLOW, **RULE) == (3, 5)


def test_adascope_never_structured_is_empty():
    assert adascope_bounds(np.zeros(K), C, D_SLOW, **RULE) == (K, K)


def test_adascope_groups_share_a_window_from_group_means():
    # group 0: samples whose S only crosses .5 on average at k=4; group 1: empty
    s = np.stack([S - 0.2, S + 0.0, np.zeros(K), np.zeros(K)])
    s[0, 3], s[1, 3] = 0.3, 0.6          # mean at k=3 is .45 < .5; at k=4: (.5+.7)/2 = .6
    c = np.tile(C, (4, 1))
    d = np.tile(D_SLOW, (4, 1))
    sel = adascope_window(s, c, d, np.array([0, 0, 1, 1]), **RULE)
    # group 0: k_s = 4, end may fire from 6: C[6] = .97 → [4, 6); group 1 never starts
    assert rows(sel.mask) == [[4, 5], [4, 5], [], []]
    assert sel.start.tolist() == [4, 4, K, K] and sel.length.tolist() == [2, 2, 0, 0]


def test_select_window_dispatch_defaults_w_max_to_30_percent():
    cfg = WindowConfig(strategy="adascope", adascope={"w_min": 1, "tau_e": 1.0, "eps_conv": 0.0})  # only w_max ends it
    sel = select_window("adascope", cfg.settings, WindowInputs(1, K, 0, np.random.default_rng(0), structural=S[None],
                        semantic=C[None], convergence=D_SLOW[None], group_ids=np.array([0]), k_lo=0, k_hi=K))
    assert rows(sel.mask) == [[3, 4, 5]]  # ceil(0.3 * 10) = 3 steps from k_s = 3


def test_every_strategy_gets_only_its_own_sub_config():
    x = WindowInputs(1, K, 7, np.random.default_rng(0), structural=S[None], semantic=C[None],
                     convergence=D_SLOW[None], group_ids=np.array([0]))
    assert set(STRATEGIES) == {"full", "fraction", "random_window", "sliding", "adascope", "credit"}
    cfg = WindowConfig(strategy="sliding", sliding={"size": 2, "start": 1, "every": 3, "stride": 2})
    assert cfg.settings == cfg.sliding
    assert rows(select_window("sliding", cfg.settings, x).mask) == [[5, 6]]  # 1 + (7 // 3) * 2 = 5
    assert WindowConfig(strategy="full").settings is None and select_window("full", None, x).mask.all()
    assert STRATEGIES["fraction"].redraw_each_pass and not STRATEGIES["adascope"].redraw_each_pass
    with pytest.raises(ValueError, match="needs the signal traces"):
        select_window("adascope", WindowConfig().adascope, WindowInputs(1, K, 0, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="unknown window strategy 'nope'"):
        select_window("nope", None, x)


def test_adascope_reward_evolution_end():
    # S reaches 0.5 at k = 3; C never reaches τ_e, D never below ε_conv: without τ_r the
    # window runs to the cap, k_s + w_max = 3 + 5
    c_low, rule = np.zeros(K), {**RULE, "w_max": 5}
    assert adascope_bounds(S, c_low, D_SLOW, **rule) == (3, 8)
    # the reward of decode(x̂0_k): 0.2 at k = 0, 1.0 at the last step; ρ_k = (R_k − 0.2)/0.8
    r = np.array([0.2, 0.2, 0.3, 0.4, 0.6, 0.76, 0.9, 0.95, 1.0, 1.0])
    # ρ = 0, 0, .125, .25, .5, .7, .875, ...: ρ ≥ 0.6 first at k = 5 = k_s + w_min
    assert adascope_bounds(S, c_low, D_SLOW, **rule, r_mean=r, tau_r=0.6) == (3, 5)
    # ρ ≥ 0.85 first at k = 6
    assert adascope_bounds(S, c_low, D_SLOW, **rule, r_mean=r, tau_r=0.85) == (3, 6)
    # a falling reward evolves too: ρ is the share of the change, whatever its sign
    assert adascope_bounds(S, c_low, D_SLOW, **rule, r_mean=1.2 - r, tau_r=0.85) == (3, 6)
    # a reward that does not evolve (flat) leaves the rule out
    assert adascope_bounds(S, c_low, D_SLOW, **rule, r_mean=np.full(K, 0.7), tau_r=0.6) == (3, 8)
    # per group: the group mean of R decides
    win = adascope_window(np.stack([S, S]), np.stack([c_low, c_low]), np.stack([D_SLOW, D_SLOW]), np.array([0, 0]),
                          **rule, reward_trace=np.stack([r, r]), tau_r=0.85)
    assert rows(win.mask) == [[3, 4, 5]] * 2


def test_reward_credit_is_the_within_group_variance_of_the_reward_increments():
    from adascope_ray.core.window import reward_credit
    # two samples; only the first one's reward rises, at step 2 (R_3 − R_2 = 1)
    r = np.array([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0],
                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    np.testing.assert_allclose(reward_credit(r), [0, 0, 0.25, 0, 0, 0])
    # a rise both samples share decides nothing between them
    np.testing.assert_allclose(reward_credit(np.array([[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]])), [0, 0, 0])


def test_credit_bounds_take_the_window_with_the_most_credit():
    from adascope_ray.core.window import credit_bounds
    c = np.array([0, 0, 0.25, 0, 0, 0])
    assert credit_bounds(c, 1) == (2, 3)
    assert credit_bounds(c, 2) == (1, 3)            # [1, 3) and [2, 4) tie: the earlier
    assert credit_bounds(np.array([0.1, 0, 0, 0.3, 0.3, 0]), 2) == (3, 5)
    assert credit_bounds(np.zeros(6), 3) == (0, 3)  # nothing is decided: the first steps
    assert credit_bounds(c, 10) == (0, 6)           # a window longer than K is all of it


def test_credit_window_is_per_group_and_needs_the_reward_trace():
    from adascope_ray.core.window import WindowInputs, credit_window, select_window
    from adascope_ray.config import CreditConfig
    r = np.zeros((4, 6))
    r[0, 1:] = 1.0        # group 0: decided at step 0
    r[2, 4:] = 1.0        # group 1: decided at step 3
    g = np.array([0, 0, 1, 1])
    sel = credit_window(r, g, 2)
    assert sel.mask.astype(int).tolist() == [[1, 1, 0, 0, 0, 0]] * 2 + [[0, 0, 1, 1, 0, 0]] * 2
    rng = np.random.default_rng(0)
    inputs = dict(batch=4, k=6, iteration=0, rng=rng, structural=np.zeros((4, 6)), semantic=np.zeros((4, 6)),
                  convergence=np.ones((4, 6)), group_ids=g)
    assert np.array_equal(select_window("credit", CreditConfig(size=2), WindowInputs(**inputs, reward_trace=r)).mask, sel.mask)
    with pytest.raises(ValueError, match="needs the reward trace"):
        select_window("credit", CreditConfig(size=2), WindowInputs(**inputs))
