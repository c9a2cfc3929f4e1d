"""The occlusion axis of the benchmark: does a swap keep what covers the target's face?

On held-out synthetic renders with an occluder over every face (the benchmark's population, seed 0, indices of
the test split), against the renderer's ground-truth visible-face mask:

* ``iou``: IoU of each mask kind with the visible face (``hull``: the landmark hull, which covers the occluder;
  ``segment``/``parse``: the hull less what the model sees covering the face); ``whole_crop`` is the chance level
  (every pixel called face).
* swapping: a source face (another identity, no occluder) is swapped onto each occluded target with
  ``landmark_warp`` and pasted back by the swap command's own :func:`~faceswaplab.swapping.swapper.paste_back`
  with each ``mask.kind``. ``occluder_mae``: mean absolute difference (0-255) between output and target over the
  occluder's pixels inside the (eroded) hull that the swap pastes (0: the occluder is kept); ``occluder_kept``:
  share of those pixels changed by at most 3 levels in every channel; ``face_change``: mean absolute difference
  over the visible face; ``identity``: cosine similarity of the output's synthetic-embedder descriptor to the
  source's (that the swap still moves the identity). The reference row ``target`` (the target unchanged, scored
  by the same code) gives the levels of a swap that does nothing.

Every image is scored; each kind is compared with ``hull`` and with the reference by paired Wilcoxon signed-rank
tests.

Command line: ``python -m faceswaplab.benchmarking.occlusion --n 100`` (add ``--kinds hull segment parse`` where
the face parser's weights are available).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

TEST_FIRST = 2250  # the first test-split index of the default synthetic data (2500 renders: 2000/250/250)
SWAP_METRICS = ("occluder_mae", "occluder_kept", "face_change", "identity")
REFERENCE = "target"  # the output is the target unchanged: every occluder kept, no identity moved


def occluded_targets(n: int, size: int, seed: int = 0, identities: int = 8):
    """`n` held-out renders with an occluder, cycling through the identities: a list of FaceRender."""
    from faceswaplab.data.synthetic import SyntheticFaces

    faces = SyntheticFaces(seed, identities, occlusion=1.0)
    return [faces.sample(j % identities, TEST_FIRST + j // identities, size) for j in range(n)]


def mask_ious(renders, kinds) -> dict[str, np.ndarray]:
    """Per render, IoU with the ground-truth visible face of each mask kind, and of the whole crop (chance)."""
    from faceswaplab.faces.masks import face_hull_mask
    from faceswaplab.faces.occlusion import mask_iou, occlusion_aware_mask

    size = renders[0].image.shape[0]
    x = torch.as_tensor(np.stack([r.image for r in renders])).permute(0, 3, 1, 2).float() / 127.5 - 1
    lm = torch.as_tensor(np.stack([r.landmarks for r in renders]))
    truth = torch.as_tensor(np.stack([r.visible for r in renders]))[:, None]
    hull = face_hull_mask(lm, size)
    out = {k: mask_iou(occlusion_aware_mask(k, x, hull), truth).numpy() for k in kinds}
    out["whole_crop"] = mask_iou(torch.ones_like(truth), truth).numpy()
    return out


def swap_scores(targets, sources, kinds, crop: int = 128) -> dict[str, dict[str, np.ndarray]]:
    """Swap `sources[i]` onto `targets[i]` (FaceRenders) with landmark_warp and paste back with each mask kind:
    ``{kind: {metric: (n,) values}}`` (see the module docstring)."""
    from faceswaplab.faces.alignment import align_face
    from faceswaplab.faces.masks import face_hull_mask_np
    from faceswaplab.methods.build import build_method
    from faceswaplab.swapping.options import SwapOptions
    from faceswaplab.swapping.swapper import paste_back

    from faceswaplab.images import to_tensor
    from faceswaplab.metrics.embedders import build_embedder

    method = build_method("landmark_warp")
    embedder = build_embedder("synthetic")
    scores = {k: {m: [] for m in SWAP_METRICS} for k in [*kinds, REFERENCE]}
    for t, s in zip(targets, sources):
        crop_t, m, lm_t = align_face(t.image, t.landmarks, crop)
        crop_s, _, lm_s = align_face(s.image, s.landmarks, crop)
        face = method.swap(crop_t, crop_s, target_landmarks=lm_t, source_landmarks=lm_s)
        # (H, W): occluder pixels inside the hull the swap pastes (eroded as the swap's default mask is)
        width = float(np.linalg.norm(t.landmarks[16] - t.landmarks[0]))
        pasted = face_hull_mask_np(t.landmarks, t.image.shape[:2], dilate=-SwapOptions().mask.erode * width) > 0.5
        occluder = ((t.mask - t.visible) > 0.5) & pasted
        visible = t.visible > 0.5
        identity = embedder(to_tensor(s.image)[None], s.landmarks[None])[0]
        for k in scores:
            out = t.image if k == REFERENCE else paste_back(t.image.copy(), crop_t, face, m, lm_t, crop,
                                                             SwapOptions.from_dict({"mask": k}))
            scores[k]["identity"].append(float(embedder(to_tensor(out)[None], t.landmarks[None])[0] @ identity))
            diff = np.abs(out.astype(np.float32) - t.image.astype(np.float32))  # (H, W, 3)
            scores[k]["occluder_mae"].append(float(diff[occluder].mean()))
            scores[k]["occluder_kept"].append(float((diff[occluder].max(1) <= 3).mean()))
            scores[k]["face_change"].append(float(diff[visible].mean()))
    return {k: {m: np.asarray(v) for m, v in d.items()} for k, d in scores.items()}


def occlusion_benchmark(n: int = 100, kinds=("hull", "segment"), seed: int = 0, iou_size: int = 64,
                        swap_size: int = 128) -> dict:
    """Mask IoU and swap scores of each mask kind on `n` occluded held-out renders, with paired tests vs hull."""
    from faceswaplab.benchmarking.significance import wilcoxon_p
    from faceswaplab.data.synthetic import SyntheticFaces

    kinds = list(dict.fromkeys(["hull", *kinds]))
    ious = mask_ious(occluded_targets(n, iou_size, seed), kinds)
    targets = occluded_targets(n, swap_size, seed)
    plain = SyntheticFaces(seed, 8)
    sources = [plain.sample((j + 1 + j // 8 % 7) % 8, TEST_FIRST + j // 8, swap_size) for j in range(n)]
    swaps = swap_scores(targets, sources, kinds, swap_size)
    result: dict = {"n": n, "occluders": [t.occluder for t in targets], "iou": {}, "swap": {}}
    for k, v in ious.items():
        result["iou"][k] = {"mean": float(v.mean()), "std": float(v.std())}
        if k not in ("hull", "whole_crop"):
            result["iou"][k]["p_vs_hull"] = wilcoxon_p(v, ious["hull"])[0]
    for k in swaps:
        result["swap"][k] = {}
        for m in SWAP_METRICS:
            v = swaps[k][m]
            result["swap"][k][m] = {"mean": float(v.mean()), "std": float(v.std())}
            if k != "hull":
                result["swap"][k][m]["p_vs_hull"] = wilcoxon_p(v, swaps["hull"][m])[0]
            if k != REFERENCE:
                result["swap"][k][m]["p_vs_target"] = wilcoxon_p(v, swaps[REFERENCE][m])[0]
    result["per_occluder_iou"] = {
        occ: {k: float(ious[k][[t == occ for t in result["occluders"]]].mean()) for k in ious}
        for occ in sorted(set(result["occluders"]))}
    return result


def format_result(r: dict) -> str:
    """A plain-text table of :func:`occlusion_benchmark`'s result."""
    lines = [f"{r['n']} occluded held-out synthetic renders", "", "mask        IoU with visible face (mean +- sd)"]
    for k, v in r["iou"].items():
        p = f"   p vs hull {v['p_vs_hull']:.2g}" if "p_vs_hull" in v else ""
        lines.append(f"{k:<11} {v['mean']:.3f} +- {v['std']:.3f}{p}")
    lines += ["", "per occluder: " + ", ".join(
        f"{o}: " + " / ".join(f"{k} {v:.3f}" for k, v in d.items()) for o, d in r["per_occluder_iou"].items())]
    lines += ["", "swap, landmark_warp, each paste-back mask (mean +- sd, Wilcoxon p vs hull)",
              "mask        " + "  ".join(f"{m:>22}" for m in SWAP_METRICS)]
    for k, d in r["swap"].items():
        cells = []
        for m in SWAP_METRICS:
            p = f" p={d[m]['p_vs_hull']:.1g}" if "p_vs_hull" in d[m] else ""
            cells.append(f"{d[m]['mean']:>8.3f}+-{d[m]['std']:<6.3f}{p}".rjust(22))
        lines.append(f"{k:<11} " + "  ".join(cells))
        if k != REFERENCE:
            vs_target = (f"p vs target {d[m]['p_vs_target']:.1g}".rjust(22) for m in SWAP_METRICS)
            lines.append(" " * 12 + "  ".join(vs_target))
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m faceswaplab.benchmarking.occlusion",
                                     description="Occlusion benchmark: mask IoU and occluder pixels kept by swaps.")
    parser.add_argument("--n", type=int, default=100, help="occluded test renders")
    parser.add_argument("--kinds", nargs="+", default=["hull", "segment"], help="mask kinds: hull segment parse")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the result to this JSON file")
    args = parser.parse_args(argv)
    r = occlusion_benchmark(args.n, args.kinds, args.seed)
    print(format_result(r))
    if args.json:
        from faceswaplab.io import write_json

        write_json(args.json, r)


if __name__ == "__main__":
    main()
