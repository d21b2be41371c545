"""top-k / random-k and error feedback (Stich et al. 2018), checked against hand-made vectors."""

import math

import torch

from stalenb import compress
from stalenb.sim.compress import Compressor


def test_topk_keeps_exactly_ceil_rho_d_largest_magnitudes():
    g = torch.tensor([0.1, -5.0, 3.0, 0.0, -0.2, 4.0, 1.0])
    d, rho = g.numel(), 0.4
    k = math.ceil(rho * d)  # 3
    u = compress.sparsify(g, "topk", rho)
    assert int((u != 0).sum()) == k == compress.kept(d, rho)
    assert torch.equal(u, torch.tensor([0.0, -5.0, 3.0, 0.0, 0.0, 4.0, 0.0]))


def test_density_one_is_identity():
    g = torch.randn(100, generator=torch.Generator().manual_seed(0))
    for kind in ("topk", "randomk", "none"):
        assert torch.equal(Compressor(kind, 1.0, 100)(g), g)


def test_per_layer_keeps_ceil_rho_dl_in_each_layer():
    g = torch.tensor([9.0, 8.0, 7.0, 6.0, 0.1, 0.2, 0.3, 0.4])
    c = Compressor("topk", 0.25, 8, layer_sizes=(4, 4))
    u = c(g)
    assert torch.equal(u, torch.tensor([9.0, 8.0, 0, 0, 0, 0, 0, 0]).float()) is False  # whole-model would
    assert torch.equal(u, torch.tensor([9.0, 0, 0, 0, 0, 0, 0, 0.4]))
    assert c.push_bytes == 8 * 2


def test_randomk_draws_from_the_seeded_generator():
    g = torch.arange(1.0, 1001.0)
    a = Compressor("randomk", 0.01, 1000, seed=3)
    b = Compressor("randomk", 0.01, 1000, seed=3)
    c = Compressor("randomk", 0.01, 1000, seed=4)
    ua, ub, uc = a(g), b(g), c(g)
    assert torch.equal(ua, ub)
    assert not torch.equal(ua, uc)
    assert int((ua != 0).sum()) == 10
    # the kept values are the original entries
    assert torch.equal(ua[ua != 0], g[ua != 0])
    # a second call draws new indices from the same generator
    assert not torch.equal(a(g) != 0, ua != 0)


def test_error_feedback_conserves_memory_plus_sent():
    gen = torch.Generator().manual_seed(1)
    c = Compressor("topk", 0.1, 50, workers=2, error_feedback=True)
    for step in range(5):
        for w in range(2):
            g = torch.randn(50, generator=gen)
            old = c.memory[w].clone()
            u = c(g, worker=w)
            assert torch.allclose(c.memory[w] + u, old + g, atol=1e-6)
            assert int((u != 0).sum()) == 5
    # the memories of different workers are separate
    assert not torch.equal(c.memory[0], c.memory[1])


def test_error_feedback_eventually_sends_every_coordinate():
    # a constant gradient with one large entry: without memory the small ones are never sent
    g = torch.tensor([10.0, 1.0, 1.0, 1.0])
    c = Compressor("topk", 0.25, 4, error_feedback=True)
    sent = sum(c(g) for _ in range(20))
    assert (sent > 0).all()
    plain = Compressor("topk", 0.25, 4)
    assert (sum(plain(g) for _ in range(20))[1:] == 0).all()


def test_bytes_counted():
    assert Compressor("none", 1.0, 1000).push_bytes == 4000
    assert Compressor("topk", 0.01, 1000).push_bytes == 8 * 10
    assert Compressor("randomk", 0.001, 1000).push_bytes == 8 * 1


def test_prefiltered_topk_keeps_what_a_full_torch_topk_keeps():
    """Model-sized vectors take the sampled-threshold prefilter (and its NumPy index pass): the kept
    set is torch.topk's, for spread-out, heavy-tailed and mostly-zero vectors alike."""
    gen = torch.Generator().manual_seed(3)
    for d, rho in [(1_033_510, 0.01), (431_080, 0.001), (40_000, 0.2), (1 << 15, 0.05)]:
        k = compress.kept(d, rho)
        for v in (torch.randn(d, generator=gen),
                  torch.randn(d, generator=gen) * torch.rand(d, generator=gen) ** 4,
                  torch.where(torch.rand(d, generator=gen) < 0.995, 0.0, torch.randn(d, generator=gen))):
            got = compress.topk_indices(v, k)
            want = torch.topk(v.abs(), k).indices
            assert got.numel() == k and len(set(got.tolist())) == k
            # equal as sets of magnitudes (ties at the k-th value may pick different indices)
            assert torch.equal(v.abs()[got].sort().values, v.abs()[want].sort().values)
