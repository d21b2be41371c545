"""The worst case of Theorem 1's lag condition: every curvature sequence and every stale-weight split.

Source: the CS744 poster, Definition 1 and Theorem 1 (``docs/research.md`` §2), lag-indexed reading:
delayed GD w_{t+1} = w_t − Σ_{j<W} β_j f'(w_{t−j}) with β_0 ≤ 1/b and Σ_{j≥1} β_j ≤ (a/2b)·β_0 converges
for every f whose generalized curvature h(x) = f'(x)/(x − x*) lies in [a, b]. Notebook 01 measures
where this stops being true on one benign function; this module computes the *worst case*.

**The error recursion is a switched linear system.** With e_t = w_t − x*, h_t = h(w_t) ∈ [a, b] and the
gradient g_t = f'(w_t) = h_t·e_t, delayed GD reads e_{t+1} = e_t − Σ_{j<W} β_j g_{t−j}. In the state
x_t = (e_t, g_{t−1}, …, g_{t−W+1}) ∈ R^W one step is x_{t+1} = M(h_t, β)·x_t with the companion matrix
(:func:`companion`)::

    M(h, β) = [[1 − β_0 h, −β_1, −β_2, …, −β_{W−1}],
               [h,          0,    0,   …,  0       ],   g_t = h·e_t
               [0,          1,    0,   …,  0       ],   the stored gradients move one lag on
               …
               [0,          0,    …,   1,  0       ]]

Only the current curvature h_t enters M (the older ones are already inside the stored gradients), so
one matrix per step, chosen by (h_t, β(t)), drives every run.

**Worst case = a joint spectral radius (JSR).** β_0 is fixed at 1/b (the largest the theorem allows;
notebook 01 uses the same) and the stale weights may change every step, β_j(t) ≥ 0 with
Σ_{j≥1} β_j(t) ≤ S, S = s·(a/2b)·β_0 (s = 1: Theorem 1's allowance; s is "the stale factor"). M is
affine in (h, β_1, …, β_{W−1}) — no product h·β_j with j ≥ 1 — so every admissible M is a convex
combination of the vertex matrices M(h, β) with h ∈ {a, b} and β_{≥1} ∈ {0, S·e_1, …, S·e_{W−1}}
(no stale weight, or all of it on one lag): 2W matrices (:func:`vertex_set`, ``split="lags"``). The
JSR ρ̂ of a bounded set equals that of its convex hull (Jungers 2009, *The Joint Spectral Radius*,
ch. 1), hence:

- ρ̂ < 1 ⇒ every sequence (h_t, β(t)) converges geometrically — for every curvature sequence in
  [a, b], so for every f of Definition 1 (and every split);
- ρ̂ > 1 ⇒ some finite product P of vertex matrices has ρ(P) > 1 (Berger–Wang: ρ̂ = limsup max ρ(P)^{1/L});
  repeating it gives a curvature sequence h_t ∈ {a, b} and a split that diverge from a generic start.

Because the set for a smaller S lies in the hull of the set for S (the zero-stale vertices are in
it), ρ̂ is non-decreasing in s, and the *worst-case boundary* s* = sup{s: ρ̂(s) < 1} is well defined.
A sequence need not come from one convex f (f' = h·(x − x*) must also increase), so s* bounds the
boundary over functions from below; it is exactly what the theorem's proof covers (the proof only
uses h_t ∈ [a, b] at every step).

**Bounds (both certified up to floating-point rounding).**

- Lower bound on ρ̂ (:func:`jsr_lower`): max ρ(P)^{1/L} over products P of length L — every product up
  to the length where there are ``max_products`` of them, then a beam search (the ``beam`` words of
  largest ρ(P)^{1/L} and the ``beam`` of largest ‖P‖^{1/L} are extended by every matrix) up to
  ``beam_length``. A product with ρ(P) > 1 is a divergence witness.
- Upper bound (:func:`certify`): Gripenberg's branch and bound (Gripenberg 1996) in a fixed vector
  norm. Products are extended one matrix at a time; a product P of length L is *closed* when
  ‖P‖ ≤ γ^L·(1 − 10⁻⁹). When every branch is closed by some depth, every infinite product splits into
  closed pieces plus a bounded tail, so ρ̂ ≤ max over the closed pieces of ‖P‖^{1/L} < γ. Two norms
  are tried: a weighted max-norm ‖x‖ = max_k |x_k|/c_k (c the eigenvector of the monotone map
  c ↦ max_i |M_i|·c, which minimises the largest one-step induced norm: :func:`box_weights`) and an
  ellipsoidal norm ‖x‖ = ‖T x‖₂ (T by L-BFGS on a soft maximum of log ‖T M_i T⁻¹‖₂, started from the
  weighted max-norm's scaling; no SDP: :func:`ellipsoid_transform`). Any norm gives a valid bound; the
  optimisation only makes it tighter. The search gives up after ``max_nodes`` products.

:func:`worst_boundary` bisects s twice: ``s_hi`` = the smallest s (to ``rel_tol``) where the search
finds a product with ρ > 1 (a divergent sequence exists: s* ≤ s_hi), ``s_lo`` = the largest s where
:func:`certify` proves ρ̂ < 1 (s* ≥ s_lo). The same for two fixed split shapes, for comparison:
``"even"`` (the stale total spread evenly over the W − 1 lags, as notebook 01's benign runs) and
``"oldest"`` (all on lag W − 1); each with total in [0, S]. With all stale weight on one lag j and
h ≡ b, e_{t+1} = −S·b·e_{t−j}, which diverges once S·b > 1, i.e. s > 2b/a: s* ≤ 2b/a for ``"lags"`` and
``"oldest"`` at every window.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import minimize

from .sim import checks
from .theory import _check_ab, _weights

SPLITS = ("lags", "even", "oldest")
#: Relative margins of :func:`certify` (closing) and of a witness (ρ > 1 + MARGIN): far above the float64
#: rounding of the norms and eigenvalues of the products searched (relative errors ~1e-13).
MARGIN = 1e-9


# -- the switched system ---------------------------------------------------------------------------
def companion(h, lag_weights) -> np.ndarray:
    """The companion matrix M(h, β) of one delayed-GD step (module docstring; Theorem 1's recursion).

    State x_t = (e_t, g_{t−1}, …, g_{t−W+1}) with g = f' = h·e; x_{t+1} = M(h_t, β)·x_t, W = len(β).

    Example:
        >>> companion(2.0, [0.5, 0.1]).tolist()
        [[0.0, -0.1], [2.0, 0.0]]
    """
    beta = _weights(lag_weights)
    h = checks.real("h", h)
    W = beta.size
    M = np.zeros((W, W))
    M[0, 0] = 1.0 - beta[0] * h
    M[0, 1:] = -beta[1:]
    if W > 1:
        M[1, 0] = h
        M[np.arange(2, W), np.arange(1, W - 1)] = 1.0
    return M


def stale_weights(a, b, window, s, split: str = "lags") -> list[tuple]:
    """The lag-weight vectors (β_0 = 1/b, β_1, …, β_{W−1}) whose hull is the split set of stale factor s.

    S = s·(a/2b)·β_0. ``"lags"``: no stale weight and all of S on one lag j = 1, …, W−1 (the vertices of
    every split of a total ≤ S); ``"even"``: 0 and S/(W−1) on every lag; ``"oldest"``: 0 and S on lag W−1.
    """
    a, b = _check_ab(a, b)
    window = checks.integer("window", window, minimum=2, note="a window of 1 has no stale weight")
    s = checks.real("s", s, ge=0)
    split = checks.choice("split", split, SPLITS)
    beta0 = 1.0 / b
    S = s * a / (2 * b) * beta0
    zero = (beta0,) + (0.0,) * (window - 1)
    if split == "lags":
        shapes = [tuple(float(S * (i == j)) for i in range(1, window)) for j in range(1, window)]
    elif split == "even":
        shapes = [(S / (window - 1),) * (window - 1)]
    else:
        shapes = [(0.0,) * (window - 2) + (S,)]
    return [zero] + [(beta0,) + sh for sh in shapes]


def vertex_set(a, b, window, s, split: str = "lags") -> tuple[np.ndarray, list[tuple]]:
    """The vertex matrices M(h, β), h ∈ {a, b}, β ∈ :func:`stale_weights`, and their labels (h, β).

    Returns ``(mats, labels)``: ``mats`` of shape (m, W, W), ``labels[i] = (h, β)``; a *word* (i_0, i_1, …)
    applies ``mats[i_0]`` first.
    """
    a, b = _check_ab(a, b)
    labels = [(h, beta) for h in (a, b) for beta in stale_weights(a, b, window, s, split)]
    return np.stack([companion(h, beta) for h, beta in labels]), labels


def product(mats, word) -> np.ndarray:
    """M_{w_{L−1}} ⋯ M_{w_1}·M_{w_0}: the word applied in time order (``mats[word[0]]`` first)."""
    mats = np.asarray(mats, dtype=float)
    P = np.eye(mats.shape[1])
    for i in word:
        P = mats[int(i)] @ P
    return P


def spectral_radius(P) -> float:
    """ρ(P) = max |eigenvalue|."""
    return float(np.max(np.abs(np.linalg.eigvals(np.asarray(P, dtype=float)))))


def replay(labels, word, cycles, e0: float = 1.0) -> np.ndarray:
    """Scalar delayed GD driven by a periodic curvature sequence and split (no matrices: a check of them).

    Step t uses (h_t, β(t)) = ``labels[word[t mod L]]``: e_{t+1} = e_t − Σ_j β_j(t)·g_{t−j} with
    g_u = h_u·e_u, and g_u = 0 for u < 0 (the state (e_0, 0, …, 0)). Returns e_0, …, e_{cycles·L}.
    """
    word = [int(i) for i in word]
    T = len(word) * checks.integer("cycles", cycles, minimum=1)
    e = np.zeros(T + 1)
    g = np.zeros(T)
    e[0] = float(e0)
    for t in range(T):
        h, beta = labels[word[t % len(word)]]
        g[t] = h * e[t]
        e[t + 1] = e[t] - sum(beta[j] * g[t - j] for j in range(len(beta)) if t - j >= 0)
    return e


# -- lower bound: products with a large spectral radius ------------------------------------------------
def _radii(P) -> np.ndarray:
    return np.max(np.abs(np.linalg.eigvals(P)), axis=-1)


def jsr_lower(mats, max_products: int = 4096, beam: int = 32, beam_length: int | None = None, top: int = 1):
    """A lower bound on the JSR: max ρ(P)^{1/L} over the products searched, and the best word.

    Every product of length L ≤ L_0 (the largest L ≤ 64 with m^L ≤ ``max_products``), then a beam search up
    to ``beam_length`` (default max(2·L_0, 4·W)): at each length the ``beam`` words of largest ρ(P)^{1/L}
    and the ``beam`` of largest ‖P‖_F^{1/L} are extended by every matrix.

    Returns:
        (value, word) with value = ρ(product(mats, word))^{1/len(word)}; with ``top`` > 1 a list of the
        ``top`` best (value, word) of distinct words (each reduced to its shortest period), best first.
    """
    mats = np.asarray(mats, dtype=float)
    m, W = mats.shape[0], mats.shape[1]
    beam = checks.integer("beam", beam, minimum=1)
    P, words = mats.copy(), np.arange(m).reshape(m, 1)
    found: dict[tuple, float] = {}

    def note(score):
        for i in np.argsort(-score)[:max(top, 1)]:
            w = _shortest_period(tuple(int(x) for x in words[i]))
            found[w] = max(found.get(w, -1.0), float(score[i]))

    def extend(P, words):
        P = (mats[:, None] @ P[None]).reshape(-1, W, W)      # index a·N + n: mats[a] @ P[n]
        words = np.concatenate([np.tile(words, (m, 1)), np.repeat(np.arange(m), words.shape[0])[:, None]], axis=1)
        return P, words

    length = 1
    score = _radii(P)
    note(score)
    cap = 64 if beam_length is None else beam_length
    while P.shape[0] * m <= max_products and length < cap:
        P, words = extend(P, words)
        length += 1
        score = _radii(P) ** (1.0 / length)
        note(score)
    beam_length = max(2 * length, 4 * W) if beam_length is None else beam_length
    norms = np.linalg.norm(P, axis=(1, 2)) ** (1.0 / length)
    while length < beam_length:
        keep = np.unique(np.concatenate([np.argsort(-score)[:beam], np.argsort(-norms)[:beam]]))
        P, words = extend(P[keep], words[keep])
        length += 1
        score = _radii(P) ** (1.0 / length)
        norms = np.linalg.norm(P, axis=(1, 2)) ** (1.0 / length)
        note(score)
    ranked = sorted(((v, w) for w, v in found.items()), key=lambda x: (-x[0], len(x[1]), x[1]))
    return ranked[0] if top <= 1 else ranked[:top]


def _shortest_period(word):
    """The word's shortest period (a power of a shorter word has the same ρ^{1/L})."""
    L = len(word)
    for p in range(1, L):
        if L % p == 0 and word == word[:p] * (L // p):
            return word[:p]
    return word


# -- upper bound: Gripenberg's branch and bound in an optimised norm ------------------------------
def _box_norms(P, c) -> np.ndarray:
    """Induced norm of the weighted max-norm max_k |x_k|/c_k: max_k Σ_j |P_kj|·c_j / c_k."""
    return (np.abs(P) * c[None, None, :] / c[None, :, None]).sum(axis=2).max(axis=1)


def box_weights(mats, iterations: int = 3000) -> np.ndarray:
    """Weights c (max c = 1) that nearly minimise the induced weighted-max-norm max_i max_k (|M_i| c)_k / c_k.

    That minimum is the cone spectral radius of the monotone map F(c) = max_i |M_i| c (Collatz–Wielandt),
    reached at F's eigenvector; power iteration on F + I/2 (a shift that keeps F's eigenvectors) finds it.
    """
    mats = np.abs(np.asarray(mats, dtype=float))
    c = np.ones(mats.shape[1])
    for _ in range(checks.integer("iterations", iterations, minimum=1)):
        nxt = (mats @ c).max(axis=0) + 0.5 * c
        nxt /= nxt.max()
        if np.allclose(nxt, c, rtol=1e-13, atol=0):
            break
        c = nxt
    return np.maximum(c, 1e-6)   # a reducible set drives some weights to 0; any c > 0 gives a norm


def ellipsoid_transform(mats, T0=None, temperature: float = 200.0, maxiter: int = 500) -> np.ndarray:
    """T minimising a soft maximum of log ‖T M_i T⁻¹‖₂ (L-BFGS from ``T0``, default the identity)."""
    mats = np.asarray(mats, dtype=float)
    mats = mats[np.abs(mats).max(axis=(1, 2)) > 0]        # a zero product adds nothing to a max of norms
    m, W = mats.shape[0], mats.shape[1]

    def objective(x):
        T = x.reshape(W, W)
        try:
            Ti = np.linalg.inv(T)
            B = T @ mats @ Ti
            U, S, Vt = np.linalg.svd(B)
        except np.linalg.LinAlgError:
            return np.inf, np.zeros_like(x)
        if not np.all(np.isfinite(S)) or S[:, 0].min() <= 0:
            return np.inf, np.zeros_like(x)
        ls = np.log(S[:, 0])
        top = ls.max()
        w = np.exp(temperature * (ls - top))
        value = top + np.log(w.sum()) / temperature
        w /= w.sum()
        G = np.zeros((W, W))
        for i in range(m):   # d log σ_max(B_i) = u vᵀ/σ : dB; dB/dT[X] = X A T⁻¹ − B X T⁻¹
            D = np.outer(U[i, :, 0], Vt[i, 0, :]) * (w[i] / S[i, 0])
            G += D @ (mats[i] @ Ti).T - B[i].T @ D @ Ti.T
        return value, G.ravel()

    T0 = np.eye(W) if T0 is None else np.asarray(T0, dtype=float)
    res = minimize(objective, T0.ravel(), jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    T = res.x.reshape(W, W)
    ok = np.all(np.isfinite(T)) and np.linalg.cond(T) < 1e6
    return T if ok else T0


def _tree(B, norm, gamma, max_nodes):
    """Gripenberg's branch and bound on the transformed matrices B (see :func:`certify`)."""
    W = B.shape[1]
    open_ = np.eye(W)[None]
    scale, bound, nodes, depth = 1.0, 0.0, 0, 0
    while open_.shape[0]:
        if nodes + open_.shape[0] * B.shape[0] > max_nodes:
            return None, nodes, depth
        new = (B[:, None] @ open_[None]).reshape(-1, W, W)
        nodes += new.shape[0]
        depth += 1
        scale *= gamma
        n = norm(new)
        closed = n <= scale * (1 - MARGIN)
        if closed.any():
            bound = max(bound, float(n[closed].max() ** (1.0 / depth)))
        open_ = new[~closed]
        worst = open_[np.argsort(-n[~closed])[:256]]           # the largest-norm open products:
        if worst.shape[0] and _radii(worst).max() >= scale:    # ρ(P)^{1/L} ≥ γ: no closing possible
            return None, nodes, depth
    return bound, nodes, depth


def certify(mats, gamma: float = 1.0, max_nodes: int = 200_000, norms=("box", "ellipsoid")):
    """Prove JSR(mats) < ``gamma`` by Gripenberg's branch and bound (module docstring), or return None.

    Returns:
        ``{"bound", "norm", "depth", "nodes"}`` with ``bound`` < gamma a certified upper bound on the
        JSR (the largest ‖P‖^{1/L} over the closed products, in the norm named), or None when neither
        norm closes every branch within ``max_nodes`` products.
    """
    mats = np.asarray(mats, dtype=float)
    gamma = checks.real("gamma", gamma, gt=0)
    c = box_weights(mats)
    total = 0
    for kind in norms:
        if kind == "box":
            B = mats * c[None, None, :] / c[None, :, None]     # diag(c)⁻¹ M diag(c)

            def norm(P):
                return np.abs(P).sum(axis=2).max(axis=1)
        else:
            T = ellipsoid_transform(mats, np.diag(1.0 / c))
            B = T @ mats @ np.linalg.inv(T)

            def norm(P):
                return np.linalg.norm(P, ord=2, axis=(1, 2))
        bound, nodes, depth = _tree(B, norm, gamma, max_nodes)
        total += nodes
        if bound is not None:
            return {"bound": bound, "norm": kind, "depth": depth, "nodes": total}
    return None


def jsr_bounds(mats, rel_tol: float = 1e-3, max_nodes: int = 200_000, **search):
    """(lower, upper, word): the JSR between a searched product's ρ^{1/L} and a certified upper bound.

    The upper bound bisects γ (to ``rel_tol``) on :func:`certify` between the lower bound and the largest
    one-step norm.
    """
    mats = np.asarray(mats, dtype=float)
    lower, word = jsr_lower(mats, **search)
    hi = float(np.linalg.norm(mats, ord=2, axis=(1, 2)).max()) * (1 + 2 * MARGIN) + 1e-300
    hi = max(hi, lower * (1 + rel_tol))
    best = certify(mats, hi, max_nodes)
    upper = best["bound"] if best else math.inf
    lo = lower
    while best and upper > lo * (1 + rel_tol):
        mid = math.sqrt(lo * upper) if lo > 0 else upper / 2
        got = certify(mats, mid, max_nodes)
        if got:
            upper = min(got["bound"], mid)
        else:
            lo = mid
    return lower, upper, word


# -- the worst-case boundary -------------------------------------------------------------------------
def worst_boundary(a, b, window, split: str = "lags", rel_tol: float = 2e-3, lo_rel_tol: float = 1e-2,
                   max_nodes: int = 200_000, max_products: int = 4096, beam: int = 32, s_max: float | None = None,
                   certify_lower: bool = True):
    """The worst-case boundary of the stale factor s (multiples of (a/2b)·β_0, β_0 = 1/b), as a bracket.

    Args:
        a, b: the curvature range; window: W ≥ 2; split: ``"lags"`` (every split, the worst case),
            ``"even"`` or ``"oldest"`` (a fixed shape, its total in [0, S]).
        rel_tol: relative width of the s_hi bisection; lo_rel_tol: of the s_lo bisection (each step of it
            costs a branch and bound).
        max_nodes: product budget of one :func:`certify`; max_products, beam: of :func:`jsr_lower`.
        s_max: where the search for a divergent s stops (default 64·b/a).
        certify_lower: compute s_lo (the expensive part); else ``s_lo`` is nan.

    Returns:
        dict with ``s_lo`` (ρ̂ < 1 certified: s* ≥ s_lo), ``s_hi`` (a product with ρ > 1 found: s* ≤ s_hi),
        ``word`` and ``rho`` (the witness at s_hi: ρ(product) > 1), ``labels`` (the vertex labels at s_hi, to
        decode the word), and from the certificate at s_lo: ``jsr_hi`` (a certified JSR upper bound < 1),
        ``norm``, ``depth``, ``nodes``.
    """
    a, b = _check_ab(a, b)
    window = checks.integer("window", window, minimum=2, note="a window of 1 has no stale weight")
    s_max = 64 * b / a if s_max is None else checks.real("s_max", s_max, gt=0)
    search_args = {"max_products": max_products, "beam": beam, "top": 16}

    def diverging(s, words):
        mats = vertex_set(a, b, window, s, split)[0]
        return next((w for w in words if spectral_radius(product(mats, w)) > 1 + MARGIN), None)

    def search(s):
        return [w for v, w in jsr_lower(vertex_set(a, b, window, s, split)[0], **search_args)
                if v ** len(w) > 1 + MARGIN]

    # s_hi: bisect on the candidate words (cheap); a full search just below the bracket; again if it finds more
    hi = 2 * b / a * (1 + rel_tol)
    while not (words := search(hi)):
        hi *= 2
        if hi > s_max:
            raise RuntimeError(f"no divergent product found up to s = {s_max:g} (window {window}, split {split})")
    lo = hi
    while True:
        while diverging(lo, words) and lo > 1e-9 * hi:
            hi, lo = lo, lo / 2
        while hi / lo > 1 + rel_tol:
            mid = math.sqrt(lo * hi)
            hi, lo = (mid, lo) if diverging(mid, words) else (hi, mid)
        more = search(lo)
        if not more:
            break
        words, hi = more + words, lo
    s_hi, word = hi, diverging(hi, words)
    mats_hi, labels = vertex_set(a, b, window, s_hi, split)
    out = {"a": a, "b": b, "window": window, "split": split, "s_lo": math.nan, "s_hi": s_hi, "word": word,
           "rho": spectral_radius(product(mats_hi, word)), "labels": labels}
    if not certify_lower:
        return out
    # s_lo: the largest s (bisection on [s_hi·2^-k, s_hi], to lo_rel_tol) where certify proves ρ̂ < 1
    lo, cert = s_hi, None
    while cert is None and lo > 1e-9 * s_hi:
        lo /= 2
        cert = certify(vertex_set(a, b, window, lo, split)[0], 1.0, max_nodes)
    top = s_hi
    while top / lo > 1 + lo_rel_tol:
        mid = math.sqrt(lo * top)
        got = certify(vertex_set(a, b, window, mid, split)[0], 1.0, max_nodes)
        top, lo, cert = (mid, lo, cert) if got is None else (top, mid, got)
    return out | {"s_lo": lo, "jsr_hi": cert["bound"], "norm": cert["norm"], "depth": cert["depth"],
                  "nodes": cert["nodes"]}


def describe(labels, word) -> str:
    """A word as text, one step each: the curvature (``a`` or ``b``) and where the stale weight sits
    (``0``: none, ``j``: all on lag j, ``even``: spread over every lag), e.g. ``"a1 a2 a3 b1"``."""
    a = min(h for h, _ in labels)
    steps = []
    for i in word:
        h, beta = labels[int(i)]
        lags = [j for j in range(1, len(beta)) if beta[j] > 0]
        where = "0" if not lags else str(lags[0]) if len(lags) == 1 else "even"
        steps.append(("a" if h == a else "b") + where)
    return " ".join(steps)
