"""Throughput of `faceswaplab.prepare` (faces written per second) with the dlib HOG backend on real media.

    python benchmarks/prepare_speed.py [--media ../shared/media] [--fps 10] [--max-frames 60] [--workers 1 2]
                                      [--upsample 1 0] [--write benchmarks/prepare_speed.md]

Inputs: every photo under media/photos (tight 150 px crops, portraits, group photos) plus frames of each video in
media/videos sampled at --fps (at most --max-frames each). Each setting runs into a fresh output folder; the
time includes starting the worker processes, so it is what a user waits for.

`--versus-plain N` also times, N rounds alternating, ``prepare`` with one worker and ``select=all`` on the photos
alone against a plain loop of the same work written directly on dlib and OpenCV (read, HOG detection at the same
upsampling and size, the padded retry, the 68-point predictor, a similarity fit of the inner landmarks to the same
template, a 256 px crop, PNG written),
both in this process with their models loaded beforehand, so the difference is what ``prepare`` adds (its checks,
records, atomic writes, resumability).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTE = ("Wall-clock figures need idle cores: when the load average exceeds the CPU count, extra workers only "
        "compete with other jobs (and each worker adds about 2 CPU-s of start-up: imports and model loading).")


def build_input(media: Path, folder: Path) -> tuple[int, int]:
    """Link all media photos and videos into one folder; return (photos, videos)."""
    photos = sorted((media / "photos").rglob("*.jpg"))
    videos = sorted((media / "videos").glob("*.mp4"))
    for p in photos:
        (folder / f"{p.parent.name}__{p.name}").symlink_to(p)
    for v in videos:
        (folder / v.name).symlink_to(v)
    return len(photos), len(videos)


def run(folder: Path, workers: int, upsample: int, fps: float, max_frames: int) -> dict:
    from faceswaplab.data.preparation import prepare

    out = Path(tempfile.mkdtemp(prefix="prepare_speed_"))
    load = os.getloadavg()[0]
    try:
        cpu0 = _cpu_seconds()
        t = time.perf_counter()
        s = prepare(folder, out, backend="dlib", detector="hog", upsample=upsample, workers=workers, fps=fps,
                    max_frames=max_frames, progress=False, require_faces=False)
        dt = time.perf_counter() - t
        cpu = _cpu_seconds() - cpu0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"workers": workers, "upsample": upsample, "seconds": dt, "cpu": cpu, "faces": s.faces, "items": s.items,
            "faces_per_s": s.faces / dt, "load": (load + os.getloadavg()[0]) / 2}


def plain_dlib(photos: list[Path], out: Path, upsample: int, size: int = 256) -> int:
    """The same work as ``prepare`` with ``select=all`` on photos, as a short script would do it: detection on a copy
    of at most 1024 px keeping detections that score 0.3 or more, retried on a copy padded by half its size when
    nothing is found (tight crops), landmarks at full resolution, faces narrower than 40 px skipped. Returns the
    faces written."""
    import cv2
    import dlib
    import numpy as np

    from faceswaplab.faces import template
    from faceswaplab.faces.backends import _dlib_model

    detector = dlib.get_frontal_face_detector()
    predictor = _dlib_model("shape_predictor", "shape_predictor_68_face_landmarks.dat")
    dst = template.canonical_landmarks(size, template.DEFAULT_MARGIN)[template.INNER].astype(np.float32)

    def detect(image):
        h, w = image.shape[:2]
        scale = min(1.0, 1024 / max(h, w))
        small = image if scale == 1.0 else cv2.resize(image, (round(w * scale), round(h * scale)),
                                                      interpolation=cv2.INTER_AREA)
        return [dlib.rectangle(round(b.left() / scale), round(b.top() / scale), round(b.right() / scale),
                               round(b.bottom() / scale)) for b in detector.run(small, upsample, 0.3)[0]]

    faces = 0
    for path in photos:
        image = dlib.load_rgb_image(str(path))
        boxes = detect(image)
        if not boxes:
            h, w = image.shape[:2]
            image = cv2.copyMakeBorder(image, h // 2, h // 2, w // 2, w // 2, cv2.BORDER_REPLICATE)
            boxes = detect(image)
        for k, box in enumerate(b for b in boxes if b.width() >= 40):
            shape = predictor(image, box)
            lm = np.array([[pt.x, pt.y] for pt in shape.parts()], np.float32)[template.INNER]
            m, _ = cv2.estimateAffinePartial2D(lm, dst, method=cv2.LMEDS)
            crop = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            cv2.imwrite(str(out / f"{path.stem}_{k}.png"), crop[..., ::-1])
            faces += 1
    return faces


def versus_plain(media: Path, rounds: int, upsample: int) -> list[dict]:
    """``prepare`` (one worker) against :func:`plain_dlib` on the photos, rounds alternating."""
    from faceswaplab.data.preparation import prepare
    from faceswaplab.faces.backends import _dlib_model

    _dlib_model("shape_predictor", "shape_predictor_68_face_landmarks.dat")  # both start with models loaded
    photos = sorted((media / "photos").rglob("*.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for p in photos:
            (folder / f"{p.parent.name}__{p.name}").symlink_to(p)
        for r in range(rounds):
            for kind in ("prepare", "plain"):
                out = Path(tmp) / f"{kind}_{r}"
                out.mkdir()
                wall, cpu = time.perf_counter(), time.process_time()
                if kind == "prepare":
                    faces = prepare(folder, out, backend="dlib", detector="hog", upsample=upsample, workers=1,
                                    select="all", progress=False, require_faces=False).faces
                else:
                    faces = plain_dlib(sorted(folder.iterdir()), out, upsample)
                rows.append({"round": r, "kind": kind, "faces": faces, "seconds": time.perf_counter() - wall,
                             "cpu": time.process_time() - cpu})
                shutil.rmtree(out)
    return rows


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (the worker processes)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    media = os.environ.get("FACESWAPLAB_MEDIA", ROOT.parent / "shared" / "media")
    ap.add_argument("--media", type=Path, default=Path(media))
    ap.add_argument("--fps", type=float, default=10.0)
    ap.add_argument("--max-frames", type=int, default=60)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--upsample", type=int, nargs="+", default=[1, 0], help="dlib HOG upsampling (1 is the default)")
    ap.add_argument("--versus-plain", type=int, default=0, metavar="N",
                    help="also N alternating rounds against a plain dlib loop on the photos")
    ap.add_argument("--write", type=Path, help="write the results as markdown to this file")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "media"
        folder.mkdir()
        n_photos, n_videos = build_input(args.media, folder)
        results = [run(folder, w, u, args.fps, args.max_frames) for u in args.upsample for w in args.workers]

    lines = [
        f"Inputs: {n_photos} photos + {n_videos} videos at {args.fps:g} fps (<= {args.max_frames} frames each); "
        f"backend dlib HOG, size 256, other options default.",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs. CPU s: this process and its workers; "
        "faces/CPU-s does not depend on other load, faces/s (wall clock) does: see the load column.",
        "",
        "| workers | upsample | images+frames | faces | wall s | CPU s | faces/s | faces/CPU-s | load avg (1 min) |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        lines.append(f"| {r['workers']} | {r['upsample']} | {r['items']} | {r['faces']} | {r['seconds']:.1f} | "
                     f"{r['cpu']:.1f} | {r['faces_per_s']:.2f} | {r['faces'] / r['cpu']:.2f} | {r['load']:.1f} |")
    if args.versus_plain:
        import statistics

        side = versus_plain(args.media, args.versus_plain, args.upsample[0])
        pairs = [(a, b) for a, b in zip(side[::2], side[1::2])]
        ratio = statistics.median(a["seconds"] / b["seconds"] for a, b in pairs)
        cpu_ratio = statistics.median(a["cpu"] / b["cpu"] for a, b in pairs)
        lines += [
            "",
            f"`prepare` (one worker, `select=all`) against a plain dlib loop doing the same work on the {n_photos} "
            f"photos (upsample {args.upsample[0]}), both in one process with the models loaded, "
            f"{args.versus_plain} rounds alternating; load average {os.getloadavg()[0]:.1f} at the end:",
            "",
            "| round | prepare s | faces | plain dlib s | faces | prepare / plain (wall) | (CPU) |",
            "|--:|--:|--:|--:|--:|--:|--:|",
            *(f"| {a['round']} | {a['seconds']:.2f} | {a['faces']} | {b['seconds']:.2f} | {b['faces']} | "
              f"{a['seconds'] / b['seconds']:.2f} | {a['cpu'] / b['cpu']:.2f} |" for a, b in pairs),
            f"| median | | | | | **{ratio:.2f}** | {cpu_ratio:.2f} |",
        ]
    table = "\n".join(lines)
    print(table)
    if args.write:
        cmd = "python benchmarks/prepare_speed.py " + " ".join(
            [f"--fps {args.fps:g}", f"--max-frames {args.max_frames}", "--workers " + " ".join(map(str, args.workers)),
             "--upsample " + " ".join(map(str, args.upsample))]
            + ([f"--versus-plain {args.versus_plain}"] if args.versus_plain else [])
        )
        args.write.write_text(
            "# prepare speed (dlib HOG)\n\n"
            "Faces written per second by `faceswaplab.prepare` on the shared real media, including worker start-up.\n\n"
            f"Command: `{cmd} --write {args.write}`\n\n" + table + "\n\n" + NOTE + "\n"
        )


if __name__ == "__main__":
    main()
