"""``trainer=multinode`` without a cluster: two one-process "nodes" on this machine (gloo over the loopback
address), started the way a cluster starts them, with the environment variables Lightning's cluster environments
read: MASTER_ADDR, MASTER_PORT and NODE_RANK on a plain cluster, SLURM's variables (``SLURMEnvironment``) under
srun. Both ranks must end with the same weights, and the run directory must be written by one of them."""

import os
import signal
import socket
import subprocess
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import Callback

from conftest import ROOT, tiny, train_cli
from test_method_contract import TRAINABLE

# Each "node": one CPU process (accelerator cpu, devices 1) of a two-node gloo job.
TWO_CPU_NODES = ["trainer=multinode", "trainer.accelerator=cpu", "trainer.devices=1", "trainer.num_nodes=2",
                 "trainer.precision=32-true", "trainer.benchmark=false",
                 "++trainer.strategy.process_group_backend=gloo", "threads=1"]
BATCHNORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def node_env(kind: str, rank: int, port: int) -> dict:
    """What the cluster sets for node `rank` of a two-node job with one task per node."""
    if kind == "plain":  # LightningEnvironment
        return {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "NODE_RANK": str(rank), "WORLD_SIZE": "2"}
    return {"SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "faceswaplab", "SLURM_NODELIST": "127.0.0.1",  # SLURMEnvironment
            "SLURM_NNODES": "2", "SLURM_NTASKS": "2", "SLURM_NTASKS_PER_NODE": "1", "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": "0", "SLURM_NODEID": str(rank), "MASTER_PORT": str(port)}


class SaveWeights(Callback):
    """Writes each rank's final state dict to ``<folder>/rank<global rank>.pt`` (outside the run directory)."""

    def __init__(self, folder: str):
        self.folder = Path(folder)

    def on_fit_end(self, trainer, pl_module):
        torch.save(pl_module.state_dict(), self.folder / f"rank{trainer.global_rank}.pt")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def two_nodes(run: Path, args: list[str], kind: str) -> list[tuple[int, str]]:
    """Runs ``python -m faceswaplab.train`` as both nodes into `run`; each node's exit code and output."""
    port = free_port()
    # The test callbacks importable in the nodes; a hung node's threads printed when it is aborted.
    env = {"PYTHONPATH": f"{ROOT / 'src'}:{ROOT / 'tests'}", "PYTHONFAULTHANDLER": "1"}
    # Each node leads its own process group, so that a hung node is killed with its loader workers.
    nodes = [train_cli(run, *TWO_CPU_NODES, *args, env=env | node_env(kind, rank, port), start_new_session=True)
             for rank in (0, 1)]
    try:
        outs = [node.communicate(timeout=600)[0] for node in nodes]
    except subprocess.TimeoutExpired:
        tails = []
        for rank, node in enumerate(nodes):
            node.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            try:
                out = node.communicate(timeout=60)[0]
            except subprocess.TimeoutExpired:  # a stuck worker of the node still holds its output open
                os.killpg(node.pid, signal.SIGKILL)
                out = node.communicate()[0]
            tails.append(f"node {rank}:\n{out[-6000:]}")
        pytest.fail("the two nodes did not finish in 600 s; their stacks at the abort:\n" + "\n".join(tails))
    return [(node.returncode, out) for node, out in zip(nodes, outs)]


def run_two_nodes(tmp_path: Path, method: str, kind: str, *overrides: str) -> Path:
    """Trains `method` (its tiny settings, or `overrides`) on two nodes; asserts both end with the same weights."""
    run = tmp_path / "run"
    weights = tmp_path / "weights"
    weights.mkdir(parents=True)
    args = overrides or tiny(method, "trainer.max_epochs=1")
    save = ["+callbacks.save_weights._target_=test_multinode.SaveWeights", f"+callbacks.save_weights.folder={weights}"]
    for rank, (code, out) in enumerate(two_nodes(run, [*args, *save], kind)):
        assert code == 0, f"node {rank}:\n{out[-4000:]}"
    a, b = (torch.load(weights / f"rank{r}.pt") for r in (0, 1))
    assert a.keys() == b.keys()
    # Batch-norm running statistics are each rank's own between steps: DDP copies rank 0's to the others at every
    # forward (and rank 0 saves them), unless trainer.sync_batchnorm (GPUs only) makes them global.
    differ = [k for k in a if not k.endswith(BATCHNORM_STATS) and not torch.equal(a[k], b[k])]
    assert not differ, f"the ranks ended with other weights: {differ}"
    return run


def check_written_once(run: Path) -> None:
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not list(run.glob("config.*.yaml")), "config.yaml written by more than one rank"
    assert (run / "metrics.jsonl").read_text().count("\n") == 1  # one validation pass, one writer
    assert [p.name for p in (run / "csv").iterdir()] == ["version_0"]  # a second "rank 0" would add version_1
    leftovers = [p.name for p in run.rglob(".*.tmp*")]
    assert not leftovers, leftovers
    assert torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["global_step"] > 0


def test_two_nodes_from_master_addr_and_node_rank(tmp_path):
    check_written_once(run_two_nodes(tmp_path, "deepfakes", "plain"))


@pytest.mark.slow
@pytest.mark.parametrize("name", TRAINABLE)
def test_two_slurm_nodes_every_method(tmp_path, name):
    check_written_once(run_two_nodes(tmp_path, name, "slurm"))


def test_slurm_launcher_is_sized_by_the_trainer():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="the cluster extra is not installed")
    from hydra import compose, initialize_config_dir
    from hydra.core.plugins import Plugins

    from faceswaplab.config import CONFIG_DIR

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", ["hydra/launcher=slurm", "trainer=multinode", "trainer.num_nodes=3", "trainer.devices=4",
                                "hydra.launcher.partition=gpu"], return_hydra_config=True)
    launcher = Plugins.instance()._instantiate(cfg.hydra.launcher)  # as Hydra builds it for -m
    sized = {k: launcher.params[k] for k in ("nodes", "tasks_per_node", "gpus_per_node", "partition")}
    assert sized == {"nodes": 3, "tasks_per_node": 4, "gpus_per_node": 4, "partition": "gpu"}
