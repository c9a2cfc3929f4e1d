"""Training step time of faceswaplab's CycleGAN and pix2pix against the reference implementation, same networks.

    python benchmarks/vs_reference.py --reference PATH [--rows cyclegan-cpu cyclegan-paper pix2pix-cpu pix2pix-paper]
        [--size 64] [--batch-sizes 1 preset] [--steps 6] [--warmup 2] [--threads 2]
        [--variants foreach fused mkldnn-off channels-last compile] [--variant-rows cyclegan-cpu pix2pix-cpu]
        [--variant-steps 12] [--variant-warmup 2]
        [--out benchmarks/vs_reference.md]

PATH is a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (Zhu et al. 2017, Isola et al. 2017): its
``models.networks`` (``define_G``, ``define_D``, ``GANLoss``, the generator classes) and ``util.image_pool`` are
imported from there as they are, and a small loop here drives one training iteration in the order of its model
files: CycleGAN forward, the generators' step with both discriminators frozen, the discriminators' step on pooled
fakes; pix2pix (one model per identity, as faceswaplab trains one conditional GAN per identity) forward, the
discriminator's step, the generator's step with the discriminator frozen.

faceswaplab's side is ``train_speed.py``'s measurement (the method's own ``training_step`` in a Lightning
``Trainer`` built from the composed config, on batches drawn beforehand). Both sides run in one process with the
same threads, alternating step by step (faceswaplab, reference, faceswaplab, ...); each side's first `--warmup`
steps are untimed and its first step FLOP-counted (``FlopCounterMode``: convolutions and matmuls of the forward
and backward passes). The reference gets the same batches (pix2pix: the same landmark sketches, drawn beforehand;
faceswaplab draws them inside its step, which is part of its time). Parameter counts of the two are compared.

Variants (``--variants``) alternate step by step inside one faceswaplab run: even steps as configured, odd steps
with the variant on (the switch itself is not timed):

* ``foreach`` / ``fused``: Adam's multi-tensor or fused implementation (the default on CPU is the per-tensor loop);
* ``mkldnn-off``: ``torch.backends.mkldnn.enabled = False`` (convolutions without oneDNN);
* ``channels-last``: networks, Adam's state and the batch in NHWC, as ``callbacks.accelerate.channels_last``;
* ``compile``: every network through ``torch.compile`` as ``callbacks.accelerate.compile`` (the compilation falls
  in the warm-up; its cost is the warm-up time beyond that of as many steady steps).
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path

import hydra
import torch
from lightning.pytorch.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

from faceswaplab.callbacks import networks
from faceswaplab.faces.sketch import draw_landmark_sketch, num_channels
from faceswaplab.io import write_text
from train_speed import (StepTimer, compose, cpu_features, load_average, matmul_gflops,  # benchmarks/train_speed.py
                         measure)
from machine import cpu_name  # benchmarks/machine.py

# Network widths per row: the CPU presets' (conf/method + conf/experiment/*_cpu.yaml, as composed) and the papers'.
ROWS = {
    "cyclegan-cpu": ("cyclegan", []),
    "cyclegan-paper": ("cyclegan", ["method.gen_width=64", "method.gen_blocks=9", "method.disc_width=64"]),
    "pix2pix-cpu": ("pix2pix", []),
    "pix2pix-paper": ("pix2pix", ["method.gen_width=64", "method.disc_width=64"]),
}
VARIANTS = ("foreach", "fused", "mkldnn-off", "channels-last", "compile")
NOTES_MARK = "<!-- notes: kept when the script rewrites this file -->"


def params(*nets: torch.nn.Module) -> int:
    return sum(p.numel() for net in nets for p in net.parameters())


class ReferenceCycleGAN:
    """The reference's CycleGAN networks, losses and optimisers at the widths of faceswaplab's config `hp`."""

    def __init__(self, networks_mod, image_pool_cls, hp):
        norm = networks_mod.get_norm_layer(hp.norm)
        if hp.gen_blocks in (6, 9):
            make_g = lambda: networks_mod.define_G(3, 3, hp.gen_width, f"resnet_{hp.gen_blocks}blocks", hp.norm,  # noqa: E731
                                                  False, "normal", hp.init_gain)
        else:  # define_G names only 6 and 9 blocks; the same class with the preset's block count
            make_g = lambda: networks_mod.init_net(networks_mod.ResnetGenerator(  # noqa: E731
                3, 3, hp.gen_width, norm_layer=norm, use_dropout=False, n_blocks=hp.gen_blocks), "normal", hp.init_gain)
        self.netG_A, self.netG_B = make_g(), make_g()
        make_d = lambda: networks_mod.define_D(3, hp.disc_width, "n_layers", hp.disc_layers, hp.norm, "normal",  # noqa: E731
                                               hp.init_gain)
        self.netD_A, self.netD_B = make_d(), make_d()
        self.criterionGAN = networks_mod.GANLoss(hp.gan_mode)
        self.fake_A_pool, self.fake_B_pool = image_pool_cls(hp.pool_size), image_pool_cls(hp.pool_size)
        betas = (hp.beta1, 0.999)
        self.optimizer_G = torch.optim.Adam([*self.netG_A.parameters(), *self.netG_B.parameters()], lr=hp.lr, betas=betas)
        self.optimizer_D = torch.optim.Adam([*self.netD_A.parameters(), *self.netD_B.parameters()], lr=hp.lr, betas=betas)
        self.hp = hp
        self.nets = [self.netG_A, self.netG_B, self.netD_A, self.netD_B]

    def inputs(self, batch: dict) -> tuple:
        return batch["image_A"], batch["image_B"]

    def backward_D_basic(self, netD, real, fake):
        loss = 0.5 * (self.criterionGAN(netD(real), True) + self.criterionGAN(netD(fake.detach()), False))
        loss.backward()

    def step(self, real_A, real_B) -> None:
        hp, l1 = self.hp, torch.nn.functional.l1_loss
        fake_B = self.netG_A(real_A)  # forward()
        rec_A = self.netG_B(fake_B)
        fake_A = self.netG_B(real_B)
        rec_B = self.netG_A(fake_A)
        for net in (self.netD_A, self.netD_B):  # set_requires_grad(D, False)
            net.requires_grad_(False)
        self.optimizer_G.zero_grad()  # backward_G(): identity, GAN, cycle
        loss_idt_A = l1(self.netG_A(real_B), real_B) * hp.lambda_B * hp.lambda_identity
        loss_idt_B = l1(self.netG_B(real_A), real_A) * hp.lambda_A * hp.lambda_identity
        loss_G_A = self.criterionGAN(self.netD_A(fake_B), True)
        loss_G_B = self.criterionGAN(self.netD_B(fake_A), True)
        loss_cycle_A = l1(rec_A, real_A) * hp.lambda_A
        loss_cycle_B = l1(rec_B, real_B) * hp.lambda_B
        (loss_G_A + loss_G_B + loss_cycle_A + loss_cycle_B + loss_idt_A + loss_idt_B).backward()
        self.optimizer_G.step()
        for net in (self.netD_A, self.netD_B):
            net.requires_grad_(True)
        self.optimizer_D.zero_grad()  # backward_D_A(), backward_D_B()
        self.backward_D_basic(self.netD_A, real_B, self.fake_B_pool.query(fake_B))
        self.backward_D_basic(self.netD_B, real_A, self.fake_A_pool.query(fake_A))
        self.optimizer_D.step()


class ReferencePix2Pix:
    """Two reference pix2pix models (one per identity) at the widths of faceswaplab's config `hp`."""

    def __init__(self, networks_mod, image_pool_cls, hp):
        in_ch, norm = num_channels(hp.sketch_channels), networks_mod.get_norm_layer(hp.norm)
        downs = int(math.log2(hp.image_size))
        self.models = []
        for _ in range(2):
            if downs in (7, 8):
                g = networks_mod.define_G(in_ch, 3, hp.gen_width, f"unet_{2**downs}", hp.norm, hp.dropout > 0)
            else:  # define_G names only unet_128 and unet_256; the same class with log2(size) downsamplings
                g = networks_mod.init_net(networks_mod.UnetGenerator(in_ch, 3, downs, hp.gen_width, norm_layer=norm,
                                                                     use_dropout=hp.dropout > 0))
            d = networks_mod.define_D(in_ch + 3, hp.disc_width, "n_layers", hp.disc_layers, hp.norm)
            betas = (hp.beta1, 0.999)
            self.models.append((g, d, torch.optim.Adam(g.parameters(), lr=hp.lr, betas=betas),
                                torch.optim.Adam(d.parameters(), lr=hp.lr, betas=betas)))
        self.criterionGAN = networks_mod.GANLoss(hp.gan_mode)
        self.hp = hp
        self.nets = [net for g, d, _, _ in self.models for net in (g, d)]

    def inputs(self, batch: dict) -> tuple:
        hp = self.hp
        sketch = lambda x: draw_landmark_sketch(batch[f"landmarks_{x}"], hp.image_size, hp.sketch_thickness,  # noqa: E731
                                                hp.sketch_channels)
        return sketch("A"), batch["image_A"], sketch("B"), batch["image_B"]

    def step(self, sketch_A, real_A, sketch_B, real_B) -> None:
        for (netG, netD, optimizer_G, optimizer_D), real_a, real_b in zip(self.models, (sketch_A, sketch_B),
                                                                            (real_A, real_B)):
            fake_b = netG(real_a)  # forward()
            netD.requires_grad_(True)  # backward_D()
            optimizer_D.zero_grad()
            loss_D_fake = self.criterionGAN(netD(torch.cat((real_a, fake_b), 1).detach()), False)
            loss_D_real = self.criterionGAN(netD(torch.cat((real_a, real_b), 1)), True)
            ((loss_D_fake + loss_D_real) * 0.5).backward()
            optimizer_D.step()
            netD.requires_grad_(False)  # backward_G()
            optimizer_G.zero_grad()
            loss_G_GAN = self.criterionGAN(netD(torch.cat((real_a, fake_b), 1)), True)
            loss_G_L1 = torch.nn.functional.l1_loss(fake_b, real_b) * self.hp.lambda_L1
            (loss_G_GAN + loss_G_L1).backward()
            optimizer_G.step()


REFERENCES = {"cyclegan": ReferenceCycleGAN, "pix2pix": ReferencePix2Pix}


def import_reference(path: str):
    """`models.networks` and `util.image_pool.ImagePool` of the reference checkout at `path`."""
    root = Path(path)
    if not (root / "models" / "networks.py").is_file():
        raise SystemExit(f"--reference {path}: no models/networks.py (expected a pytorch-CycleGAN-and-pix2pix checkout)")
    sys.path.insert(0, str(root))
    from models import networks as networks_mod
    from util.image_pool import ImagePool

    return networks_mod, ImagePool


class Alternate(Callback):
    """After each faceswaplab step, one reference step on the same batch (kept out of faceswaplab's timing)."""

    def __init__(self, reference, warmup: int):
        self.reference, self.warmup = reference, warmup
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.flops = 0
        self.timer: StepTimer | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.timer = next(c for c in trainer.callbacks if isinstance(c, StepTimer))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with self.timer.excluded():
            inputs = self.reference.inputs(batch)  # faceswaplab's batch, as it was (pix2pix: sketches drawn)
            if batch_idx == 0:
                with FlopCounterMode(display=False) as counter:
                    self.reference.step(*inputs)
                self.flops = counter.get_total_flops()
                return
            t0 = (time.perf_counter(), time.process_time())
            self.reference.step(*inputs)
            if batch_idx >= self.warmup:
                self.wall.append(time.perf_counter() - t0[0])
                self.cpu.append(time.process_time() - t0[1])


class Toggle(Callback):
    """Switches `variant` on before odd steps and off before even ones (the switch kept out of the timing)."""

    def __init__(self, variant: str):
        self.variant = variant
        self.timer: StepTimer | None = None
        self.compiled: dict[torch.nn.Module, object] = {}

    def on_train_start(self, trainer, pl_module) -> None:
        self.timer = next(c for c in trainer.callbacks if isinstance(c, StepTimer))
        if self.variant == "compile":
            for net in networks(pl_module):
                net.compile()
                self.compiled[net] = net._compiled_call_impl

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        with self.timer.excluded():
            self.switch(trainer, pl_module, batch, on=batch_idx % 2 == 1)

    def on_train_end(self, trainer, pl_module) -> None:
        self.switch(trainer, pl_module, {}, on=False)

    def switch(self, trainer, pl_module, batch: dict, on: bool) -> None:
        v = self.variant
        if v in ("foreach", "fused"):
            for opt in trainer.optimizers:
                for group in opt.param_groups:
                    group[v] = True if on else None
        elif v == "mkldnn-off":
            torch.backends.mkldnn.enabled = not on
        elif v == "channels-last":
            fmt = torch.channels_last if on else torch.contiguous_format
            pl_module.to(memory_format=fmt)
            for opt in trainer.optimizers:
                for state in opt.state.values():
                    for k, t in state.items():
                        if torch.is_tensor(t) and t.dim() == 4:
                            state[k] = t.contiguous(memory_format=fmt)
            for k, t in batch.items():
                if torch.is_tensor(t) and t.dim() == 4 and t.is_floating_point():
                    batch[k] = t.contiguous(memory_format=fmt)
        elif v == "compile":
            for net, impl in self.compiled.items():
                net._compiled_call_impl = impl if on else None
        else:
            raise ValueError(f"unknown variant {v!r}")


def median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def pair_ratio(a: list[float], b: list[float]) -> float:
    """Median of a[i] / b[i] over steps run next to each other: the load of the moment cancels in each pair."""
    return median([x / y for x, y in zip(a, b)])


def run_args(args, row: str, batch_size: int | None) -> argparse.Namespace:
    return argparse.Namespace(batch_size=batch_size, device="cpu", overrides=ROWS[row][1], prefetch=args.prefetch,
                              warmup=args.warmup, steps=args.steps)


def preset_batch(method: str, size: int, run_dir: str) -> int:
    return int(compose(method, size, None, "cpu", [], run_dir).data.batch_size)


def compare(row: str, size: int, batch_size: int, args, ref_mod, run_dir: str) -> dict:
    """One comparison row: faceswaplab's step and the reference's, alternating."""
    method, overrides = ROWS[row]
    cfg = compose(method, size, batch_size, "cpu", overrides, run_dir)
    hp = cfg.method
    reference = REFERENCES[method](*ref_mod, hp)
    ours = hydra.utils.instantiate(cfg.method)  # for its parameter count (measure() builds its own)
    p_ours, p_ref = params(*networks(ours)), params(*reference.nets)
    del ours
    alternate = Alternate(reference, args.warmup)
    r = measure(method, size, run_args(args, row, batch_size), run_dir, callbacks=[alternate])
    out = {"row": row, "method": method, "size": size, "batch_size": r["batch_size"], "params_ours": p_ours,
           "params_ref": p_ref, "flops_ours": (r["gflop_per_step"] or 0) * 1e9, "flops_ref": alternate.flops,
           "ours_s": r["s_per_step_median"], "ref_s": median(alternate.wall), "ours_steps": r["step_s"],
           "ref_steps": [round(t, 4) for t in alternate.wall], "images_per_step": r["images_per_step"]}
    out["ratio"] = pair_ratio(r["step_s"], alternate.wall)
    out["cpu_ratio"] = pair_ratio(r["cpu_step_s"], alternate.cpu)
    return out


def variant(row: str, size: int, name: str, args, run_dir: str) -> dict:
    """faceswaplab's step with `name` off (even steps) and on (odd steps), alternating in one run."""
    method, _ = ROWS[row]
    a = run_args(args, row, None)
    a.warmup = args.variant_warmup + args.variant_warmup % 2  # even: both sides warm up alike
    a.steps = args.variant_steps + args.variant_steps % 2
    r = measure(method, size, a, run_dir, callbacks=[Toggle(name)])
    off, on = r["step_s"][0::2], r["step_s"][1::2]  # step a.warmup + i is odd exactly when i is
    out = {"row": row, "method": method, "size": size, "batch_size": r["batch_size"], "variant": name,
           "off_s": median(off), "on_s": median(on), "off_steps": off, "on_steps": on, "warmup_s": r["warmup_s"]}
    out["ratio"] = pair_ratio(on, off)
    out["cpu_ratio"] = pair_ratio(r["cpu_step_s"][1::2], r["cpu_step_s"][0::2])
    # the warm-up beyond as many steady steps of each kind: torch.compile's compilation for that variant
    out["extra_warmup_s"] = r["warmup_s"] - a.warmup / 2 * (out["off_s"] + out["on_s"])
    return out


def f(x, spec: str) -> str:
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, spec)


def markdown(cmp_rows: list[dict], var_rows: list[dict], info: dict) -> str:
    peak = max(info["matmul_gflops"])
    lines = [
        "# faceswaplab against the reference CycleGAN / pix2pix: CPU training step",
        "",
        "One training iteration of faceswaplab's method (its `training_step` in a Lightning `Trainer`) and of the",
        "reference code (junyanz/pytorch-CycleGAN-and-pix2pix: its `models.networks` imported from the checkout,",
        "driven in the order of its model files), on the same networks, batches and threads, alternating step by",
        "step in one process; see `vs_reference.py` for details.",
        "",
        f"- command: `{info['command']}`",
        f"- date: {info['date']}",
        f"- machine: {info['cpu']} ({info['cpu_features']}), {info['cores']} logical CPUs; torch {info['torch']}, "
        f"{info['threads']} torch threads",
        f"- load average (1 min): {info['load_before']:.2f} at start, {info['load_after']:.2f} at end (2 cores shared "
        "with other work: the ratios, taken within one alternating run, are the robust figures)",
        f"- fp32 matmul 2048 x 2048: {info['matmul_gflops'][0]:.1f} GFLOP/s before, {info['matmul_gflops'][1]:.1f} "
        f"after (utilisation is against {peak:.1f})",
        f"- reference: {info['reference']} (imported without edits)",
        f"- warm-up steps: {info['warmup']} per side (the first one FLOP-counted); timed steps: {info['steps']} per side",
        "",
    ]
    if cmp_rows:
        lines += [
            "## Step time, same networks",
            "",
            "| row | size | batch | params ours / ref | GFLOP/step ours / ref | ref s/step | ours s/step | ours / ref | CPU-time ratio "
            "| ref GFLOP/s (of matmul) | ours GFLOP/s (of matmul) | ours img/s |",
            "|---|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in cmp_rows:
            if "error" in r:
                lines.append(f"| {r['row']} | {r['size']} | {r.get('batch_size', '-')} | failed: {r['error']} ||||||||")
                continue
            same = "equal" if r["params_ours"] == r["params_ref"] else "DIFFER"
            g_o, g_r = r["flops_ours"] / 1e9, r["flops_ref"] / 1e9
            lines.append(
                f"| {r['row']} | {r['size']} | {r['batch_size']} | {r['params_ours']:,} / {r['params_ref']:,} ({same}) "
                f"| {g_o:.2f} / {g_r:.2f} | {r['ref_s']:.3f} | {r['ours_s']:.3f} | **{r['ratio']:.2f}** | {r['cpu_ratio']:.2f} "
                f"| {g_r / r['ref_s']:.1f} ({100 * g_r / r['ref_s'] / peak:.0f}%) "
                f"| {g_o / r['ours_s']:.1f} ({100 * g_o / r['ours_s'] / peak:.0f}%) "
                f"| {r['images_per_step'] / r['ours_s']:.1f} |")
        lines += [
            "",
            "- s/step: median wall clock per step; ours / ref: the median over step pairs (each faceswaplab step and",
            "  the reference step right after it) of their ratio (below 1: faceswaplab is faster). img/s",
            "  counts both identities (2 x batch per step). GFLOP/step counts convolutions and matmuls only, so",
            "  GFLOP/s is a lower bound of the work rate. CPU-time ratio: the same ratio of this process's CPU time",
            "  per step (all threads), steadier than wall clock when other processes take turns on the cores.",
            "- per-step times (s), ours | ref:",
            *[f"  - {r['row']} {r['size']} px batch {r['batch_size']}: {r['ours_steps']} | {r['ref_steps']}"
              for r in cmp_rows if "error" not in r],
            "",
        ]
    if var_rows:
        lines += [
            "## Variants of faceswaplab's step (off and on alternating in one run)",
            "",
            "| row | size | batch | variant | off s/step | on s/step | on / off | CPU-time ratio | warm-up beyond steady steps (s) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|",
        ]
        for r in var_rows:
            if "error" in r:
                lines.append(f"| {r['row']} | {r['size']} | - | {r['variant']} | failed: {r['error']} ||||")
                continue
            lines.append(f"| {r['row']} | {r['size']} | {r['batch_size']} | {r['variant']} | {r['off_s']:.3f} "
                         f"| {r['on_s']:.3f} | **{r['ratio']:.2f}** | {r['cpu_ratio']:.2f} | {r['extra_warmup_s']:.1f} |")
        lines += ["", "- on / off: the median over step pairs (one step off, the next on) of their ratio.",
                  "- per-step times (s), off | on:",
                  *[f"  - {r['row']} {r['variant']}: {r['off_steps']} | {r['on_steps']}"
                    for r in var_rows if "error" not in r], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", required=True, help="a checkout of junyanz/pytorch-CycleGAN-and-pix2pix")
    ap.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--size", type=int, nargs="+", default=[64])
    ap.add_argument("--batch-sizes", nargs="+", default=["1", "preset"], help="integers, or 'preset' (the config's)")
    ap.add_argument("--steps", type=int, default=6, help="timed steps per side")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    ap.add_argument("--prefetch", type=int, default=4, help="batches drawn from the data module, then cycled")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="*", default=[], choices=VARIANTS)
    ap.add_argument("--variant-rows", nargs="+", default=["cyclegan-cpu", "pix2pix-cpu"], choices=list(ROWS))
    ap.add_argument("--variant-warmup", type=int, default=2, help="untimed steps (both kinds) of a variant run")
    ap.add_argument("--variant-steps", type=int, default=12, help="timed steps (both kinds) of a variant run")
    ap.add_argument("--matmul-seconds", type=float, default=2.0)
    ap.add_argument("--out", default=None, help="write the Markdown report here (text below the notes mark is kept)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    ref_mod = import_reference(args.reference)
    import logging
    import warnings

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"lightning\..*")

    info = {"command": ("python benchmarks/vs_reference.py " + shlex.join(sys.argv[1:] if argv is None else argv)).strip(),
            "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "cpu": cpu_name(),
            "cpu_features": cpu_features(), "cores": os.cpu_count(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "load_before": load_average(), "warmup": args.warmup,
            "steps": args.steps, "reference": args.reference}
    print(f"{info['cpu']}, torch {info['torch']}, {info['threads']} threads, load {info['load_before']:.2f}", flush=True)
    gflops = [matmul_gflops("cpu", seconds=args.matmul_seconds)]
    print(f"fp32 matmul: {gflops[0]:.1f} GFLOP/s", flush=True)
    cmp_rows, var_rows = [], []
    with tempfile.TemporaryDirectory(prefix="vs_reference_") as run_dir:
        for size in args.size:
            for row in args.rows:
                method = ROWS[row][0]
                sizes = [preset_batch(method, size, run_dir) if b == "preset" else int(b) for b in args.batch_sizes]
                for bs in dict.fromkeys(sizes):
                    print(f"{row} {size} px batch {bs} ...", flush=True)
                    try:
                        r = compare(row, size, bs, args, ref_mod, run_dir)
                        print(f"  params ours {r['params_ours']:,} ref {r['params_ref']:,}; GFLOP/step ours "
                              f"{r['flops_ours'] / 1e9:.2f} ref {r['flops_ref'] / 1e9:.2f}; s/step ours "
                              f"{r['ours_s']:.3f} ref {r['ref_s']:.3f}; ours/ref {r['ratio']:.2f}", flush=True)
                    except Exception as e:
                        traceback.print_exc()
                        r = {"row": row, "size": size, "batch_size": bs, "error": f"{type(e).__name__}: {e}"[:200]}
                    cmp_rows.append(r)
            for row in args.variant_rows if args.variants else []:
                for name in args.variants:
                    print(f"{row} {size} px variant {name} ...", flush=True)
                    try:
                        r = variant(row, size, name, args, run_dir)
                        print(f"  off {r['off_s']:.3f} on {r['on_s']:.3f} s/step: on/off {r['ratio']:.2f} "
                              f"(extra warm-up {r['extra_warmup_s']:.1f} s)", flush=True)
                    except Exception as e:
                        traceback.print_exc()
                        r = {"row": row, "size": size, "variant": name, "error": f"{type(e).__name__}: {e}"[:200]}
                    finally:
                        torch.backends.mkldnn.enabled = True
                    var_rows.append(r)
    gflops.append(matmul_gflops("cpu", seconds=args.matmul_seconds))
    info.update(matmul_gflops=gflops, load_after=load_average())
    text = markdown(cmp_rows, var_rows, info)
    print(text)
    if args.out:
        old = Path(args.out).read_text() if Path(args.out).exists() else ""
        notes = old[old.index(NOTES_MARK):] if NOTES_MARK in old else NOTES_MARK + "\n"
        write_text(args.out, text + "\n" + notes)
    return 1 if any("error" in r for r in cmp_rows + var_rows) else 0


if __name__ == "__main__":
    sys.exit(main())
