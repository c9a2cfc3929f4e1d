"""The output folder's state: which items are finished (resume), and atomic appends to its JSON-lines files."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from faceswaplab.data.preparation.items import ItemResult
from faceswaplab.data.preparation.options import OUTPUT_OPTIONS, PrepareError
from faceswaplab.io import write_text


def item_key(source: str, frame: int | None) -> tuple[str, int | None]:
    return (source, frame)


def read_jsonl(path: Path) -> tuple[list[dict], bool]:
    """Rows of a JSON-lines file, and whether its end was broken (a partly written line, dropped)."""
    rows, broken = [], False
    if path.exists():
        text = path.read_text()
        broken = bool(text) and not text.endswith("\n")  # cut before its newline: rewrite before appending
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                broken = True
    return rows, broken


class OutputState:
    def __init__(self, output: Path, record: dict, overwrite: bool):
        self.output = output
        output.mkdir(parents=True, exist_ok=True)
        self.index_path = output / "index.jsonl"
        self.report_path = output / "report.jsonl"
        self.progress_path = output / "progress.jsonl"
        self._check_options(record, overwrite)
        self._remove_stale_temporaries()
        progress, broken = read_jsonl(self.progress_path)
        if broken:  # a line cut by a kill: drop it, or the next append would be glued onto it
            write_text(self.progress_path, "".join(json.dumps(r) + "\n" for r in progress))
        self.done_items = {item_key(r["source"], r.get("frame")) for r in progress if "frame" in r}
        self.done_files = {r["source"] for r in progress if r.get("complete")}
        # Drop rows of items that did not finish (the run was killed between writing them and the progress line).
        for path in (self.index_path, self.report_path):
            rows, broken = read_jsonl(path)
            kept = [r for r in rows if item_key(r["source"], r.get("frame")) in self.done_items]
            if broken or len(kept) != len(rows):
                write_text(path, "".join(json.dumps(r) + "\n" for r in kept))
        self._files = {p: open(p, "a") for p in (self.index_path, self.report_path, self.progress_path)}

    def _check_options(self, record: dict, overwrite: bool) -> None:
        yaml_path = self.output / "prepare.yaml"
        from omegaconf import OmegaConf

        if yaml_path.exists() and not overwrite:
            old = OmegaConf.to_container(OmegaConf.load(yaml_path))
            diff = [k for k in OUTPUT_OPTIONS if old.get(k) != record.get(k)]
            if diff:
                changes = ", ".join(f"{k}: {old.get(k)!r} -> {record.get(k)!r}" for k in diff)
                raise PrepareError(f"{self.output} holds a run with other options ({changes}); "
                                   "use another output folder or overwrite=true")
        if overwrite:
            for p in ("index.jsonl", "report.jsonl", "progress.jsonl"):
                (self.output / p).unlink(missing_ok=True)
            shutil.rmtree(self.output / "faces", ignore_errors=True)
        write_text(yaml_path, OmegaConf.to_yaml(OmegaConf.create(record)))

    def _remove_stale_temporaries(self) -> None:
        # atomic_path names its temporaries ".<stem>.<random>.tmp<suffix>"; a killed run can leave some behind.
        for p in self.output.rglob(".*.tmp*"):
            if p.is_file():
                p.unlink()

    def commit(self, result: ItemResult) -> None:
        for path, rows in ((self.index_path, result.rows), (self.report_path, result.skips)):
            if rows:
                self._append(path, rows)
        self._append(self.progress_path, [{"source": result.source, "frame": result.frame}])
        self.done_items.add(item_key(result.source, result.frame))

    def complete_file(self, source: str) -> None:
        self._append(self.progress_path, [{"source": source, "complete": True}])
        self.done_files.add(source)

    def _append(self, path: Path, rows: list[dict]) -> None:
        f = self._files[path]
        f.write("".join(json.dumps(r) + "\n" for r in rows))
        f.flush()

    def close(self) -> None:
        for f in self._files.values():
            f.close()
