"""The few-shot reenactment method's own maths (faceswaplab.methods.fewshot): the K-shot embedding, episodes, the
projection discriminator, swapping with K photos, fine-tuning's start and the episode sampler."""

import lightning as L
import numpy as np
import pytest
import torch

from conftest import compose_train, tiny
from faceswaplab.data import FaceDataModule, SyntheticIdentity
from faceswaplab.data.samplers import ManySampler
from faceswaplab.data.synthetic import SyntheticFaces
from faceswaplab.losses import FacePerceptualLoss
from faceswaplab.methods.fewshot import FewShot


def model(**kw) -> FewShot:
    torch.manual_seed(0)
    return FewShot(image_size=32, **{**FewShot.tiny, **kw}).eval()


def faces(identity: int, n: int, start: int = 0):
    gen = SyntheticFaces(seed=0)
    fs = [gen.sample(identity, start + k, size=32) for k in range(n)]
    images = torch.stack([torch.from_numpy(f.image).permute(2, 0, 1).float() / 127.5 - 1 for f in fs])
    return images, torch.stack([torch.from_numpy(f.landmarks).float() for f in fs])


def test_the_k_shot_embedding_is_the_mean_of_the_frames_and_ignores_their_order():
    m = model()
    x, lm = faces(0, 5)
    with torch.no_grad():
        e = m.embed(x[None], lm[None])  # (1, D)
        perm = torch.tensor([3, 0, 4, 1, 2])
        assert torch.allclose(m.embed(x[perm][None], lm[perm][None]), e, atol=1e-5)
        each = m.embed(x[:, None], lm[:, None])  # (5, D): one frame each
    assert torch.allclose(each.mean(0, keepdim=True), e, atol=1e-5)
    assert not torch.allclose(each[0], e[0], atol=1e-3)  # the frames do differ


def test_leave_one_out_embeds_each_frame_by_the_other_frames_of_its_episode():
    e = torch.randn(7, 4)
    episode = torch.tensor([0, 0, 0, 1, 1, 1, 1])
    got = FewShot.leave_one_out(e, episode)
    for t in range(7):
        others = [j for j in range(7) if episode[j] == episode[t] and j != t]
        assert torch.allclose(got[t], e[others].mean(0), atol=1e-6)


def test_episodes_cut_each_identity_into_runs_of_at_most_k_plus_one():
    m = model(K=2)
    identity = torch.tensor([5, 5, 5, 5, 5, 5, 5, 9, 3, 3])  # 7 frames of 5, one of 9, two of 3
    frames, episode, ids = m.episodes(identity)
    assert ids.tolist() == [3, 5, 5]  # 3: one episode; 5: runs of 3 and 3 + the lone last frame; 9: left out
    assert frames.tolist() == [8, 9, 0, 1, 2, 3, 4, 5, 6]
    assert episode.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="group_size=3"):
        m.episodes(torch.tensor([0, 1, 2]))


def test_the_projection_discriminator_scores_v_dot_w_plus_w0_plus_b():
    m = model()
    torch.nn.init.normal_(m.w0)
    torch.nn.init.normal_(m.b)
    x, lm = faces(0, 3)
    sk, w = m.sketch(lm), m.identity_embedding(torch.tensor([4, 7, 4]))
    with torch.no_grad():
        r = m.score(x, sk, w)
        v = m.netD(torch.cat([x, sk], 1))  # V(x, y): global sum pooling of the last block's ReLU
        h = m.netD.stem(torch.cat([x, sk], 1))
        for block in m.netD.blocks:
            h = block(h)
    assert torch.allclose(v, torch.relu(h).sum((2, 3)))
    direct = torch.stack([v[i] @ (w[i] + m.w0) + m.b for i in range(3)])
    assert torch.allclose(r, direct, atol=1e-4)


def test_swap_with_k_shots_uses_their_mean_embedding_and_their_mean_face_shape():
    m = model()
    m.mean_landmarks.copy_(faces(2, 1)[1][0])
    m.shape_seen.fill_(True)
    target, t_lm = faces(1, 2)
    src, s_lm = faces(0, 4, start=10)
    out = m.swap(target, src, target_landmarks=t_lm, source_landmarks=s_lm, shots=4)
    with torch.no_grad():
        direct = m.draw(t_lm, m.proj(m.embed(src[None], s_lm[None])).expand(2, -1), s_lm.mean(0).expand(2, -1, -1))
    assert out.shape == target.shape and torch.allclose(out, direct, atol=1e-3)
    # the same shots in another order, or given once per target (B * K), swap alike (up to float summation order)
    perm = torch.tensor([2, 0, 3, 1])
    assert torch.allclose(m.swap(target, src[perm], target_landmarks=t_lm, source_landmarks=s_lm[perm], shots=4), out,
                          atol=1e-3)
    per_target = m.swap(target, src.repeat(2, 1, 1, 1), target_landmarks=t_lm, source_landmarks=s_lm.repeat(2, 1, 1),
                        shots=4)
    assert torch.allclose(per_target, out, atol=1e-3)
    one_shot = m.swap(target, src[:1], target_landmarks=t_lm, source_landmarks=s_lm[:1])
    assert (one_shot - out).abs().mean() > 0.05
    with pytest.raises(ValueError, match="shots=3"):
        m.swap(target, src, target_landmarks=t_lm, source_landmarks=s_lm, shots=3)
    with pytest.raises(ValueError, match="not fine-tuned"):
        m.swap(target, target_landmarks=t_lm)


def test_fine_tuning_starts_the_person_from_the_embedder_as_the_paper():
    m = model()
    dm = FaceDataModule(identities=[SyntheticIdentity(3, num_samples=12)], mode="many", image_size=32, batch_size=4)
    dm.setup()
    m.init_person(dm)
    from faceswaplab.data.samples import SampleRef

    batch = dm.load([SampleRef(0, i) for i in range(len(dm.dataset("train")))], "train")
    with torch.no_grad():
        e_new = m.embed(batch["image"][None], batch["landmarks"][None])[0]
    assert torch.allclose(m.w_person, e_new, atol=1e-5)  # w' = e_NEW
    assert torch.allclose(m.psi_person, m.proj(e_new), atol=1e-5)  # psi' = P e_NEW
    assert torch.allclose(m.mean_person, batch["landmarks"].mean(0))
    target, t_lm = faces(1, 2)
    out = m.swap(target, target_landmarks=t_lm)  # no source: the fine-tuned person
    with torch.no_grad():
        expected = m.draw(t_lm, m.proj(e_new).expand(2, -1), batch["landmarks"].mean(0).expand(2, -1, -1))
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.slow
def test_the_generator_fits_a_fixed_batch_through_the_content_loss():
    m = model(width=16, max_width=32).train()
    x, lm = faces(0, 8)
    face = FacePerceptualLoss()
    opt = torch.optim.Adam([*m.netG.parameters(), *m.proj.parameters(), *m.embedder.parameters()], lr=1e-3)
    values = []
    for _ in range(25):
        e_hat = m.leave_one_out(m.embedder(torch.cat([x, m.sketch(lm)], 1)), torch.zeros(8, dtype=torch.long))
        loss = face(m.netG(m.sketch(lm), m.proj(e_hat)), x, lm)
        opt.zero_grad()
        loss.backward()
        opt.step()
        values.append(loss.item())
    assert np.mean(values[-5:]) < 0.85 * np.mean(values[:5]), values


def test_the_many_sampler_gives_runs_of_one_identity_and_visits_every_sample():
    sampler = ManySampler([7, 3, 5], shuffle=True, seed=1, group_size=3)
    items = list(sampler)
    assert len(items) == len(sampler) == 9 + 3 + 6  # each identity's runs, the last filled up
    for run in range(0, len(items), 3):
        assert len({k for k, _, _ in items[run:run + 3]}) == 1
        assert len({i for _, i, _ in items[run:run + 3]}) == 3 or items[run][0] != 1
    for k, n in enumerate([7, 3, 5]):
        assert {i for kk, i, _ in items if kk == k} == set(range(n))
    assert list(ManySampler([7, 3, 5], shuffle=False, group_size=3)) == list(ManySampler([7, 3, 5], shuffle=False))


@pytest.mark.slow
def test_fine_tuning_command_starts_from_a_meta_run_and_swaps_without_sources(tmp_path):
    import faceswaplab as fsl
    from faceswaplab.train import train

    args = tiny("fewshot", "trainer.max_epochs=1")
    train(compose_train(*args, run_dir=tmp_path / "meta"))
    finetune = ["+finetune._target_=faceswaplab.data.SyntheticIdentity", "+finetune.identity=5",
                "+finetune.num_samples=20", f"ckpt_path={tmp_path / 'meta'}"]
    L.seed_everything(0)
    train(compose_train(*args, *finetune, run_dir=tmp_path / "tuned"))
    tuned, meta = fsl.load(tmp_path / "tuned", device="cpu"), fsl.load(tmp_path / "meta", device="cpu")
    assert bool(tuned.person_ready) and not bool(meta.person_ready)
    changed = [k for k, v in meta.state_dict().items() if not torch.equal(v, tuned.state_dict()[k])]
    assert any(k.startswith("netG.") for k in changed) and "psi_person" in changed
    target, t_lm = faces(1, 2)
    assert tuned.swap(target, target_landmarks=t_lm).shape == target.shape
    # The same command with more epochs continues the fine-tuning run (its last.ckpt), not the meta run.
    train(compose_train(*args, *finetune, "trainer.max_epochs=2", run_dir=tmp_path / "tuned"))
    again = torch.load(tmp_path / "tuned" / "checkpoints" / "last.ckpt", weights_only=False)
    assert again["epoch"] == 1 and bool(again["state_dict"]["person_ready"])
    assert not torch.equal(again["state_dict"]["psi_person"], tuned.psi_person)  # trained on from where it was


@pytest.mark.slow
def test_benchmark_k_shot_rows_share_one_training_and_score_every_pair(tmp_path):
    from faceswaplab.benchmarking import run_benchmark
    from faceswaplab.config import compose
    from conftest import trained_rows

    train = ",".join(repr(o) for o in tiny("fewshot", "trainer.max_epochs=1"))
    out = run_benchmark(compose("benchmark", [
        "data.A.num_samples=40", *trained_rows(), "~methods.landmark_warp", "data.image_size=32", "num_pairs=4",
        "gallery.per_identity=2", "bootstrap.resamples=50", f"train_dir={tmp_path / 'models'}",
        f"out_dir={tmp_path / 'out'}", f"+methods.one.train=[{train}]", f"+methods.three.train=[{train}]",
        "+methods.three.swap.shots=3"]))
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["one"]  # one training for both rows
    one, three = out["results"][-2:]
    assert one["checkpoint"] == three["checkpoint"] and three["row"]["swap"] == "{'shots': 3}"
    for row in (one, three):
        assert all(v["n"] + v["failed"] == 4 for v in row["metrics"].values())
    assert one["metrics"]["landmark_nme"]["mean"] != three["metrics"]["landmark_nme"]["mean"]


def test_fine_tuning_needs_a_meta_run_and_a_method_that_fine_tunes(tmp_path):
    from faceswaplab.errors import ConfigError
    from faceswaplab.train import train

    with pytest.raises(ConfigError, match="ckpt_path"):
        train(compose_train(*tiny("fewshot"), f"+finetune={tmp_path}", run_dir=tmp_path / "a"))
    with pytest.raises(ConfigError, match="no few-shot fine-tuning"):
        train(compose_train(*tiny("simswap"), f"+finetune={tmp_path}", f"ckpt_path={tmp_path}",
                            run_dir=tmp_path / "b"))
