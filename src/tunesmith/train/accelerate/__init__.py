"""Training on several processes: `accelerate launch` with a config shipped beside this file.

A job whose spec asks for more than one process (`processes: 2`), or names an accelerate
config, does not train in the process that starts it. That process runs

    python -m accelerate.commands.launch --config_file <config> --num_processes N \\
        --num_machines 1 --main_process_port 0 -m tunesmith.train.worker JOB_ID --launched [--resume]

in a new session (so `tunesmith jobs cancel` can signal the launcher's process group),
records the launcher's pid as the job's, and waits for it (foreground) or leaves it
running (detached). The launcher (torchrun underneath) starts one worker per rank; every
rank runs the same recipe (backends/local.py), and only rank 0 writes the store rows,
metrics.jsonl, result.json and the registry entry.

The shipped configs, one YAML file each, with a comment on every knob:

    ddp              one copy of the model per GPU, gradients averaged
    fsdp             FSDP full shard: weights, gradients and optimizer state split over the GPUs
    deepspeed-zero2  DeepSpeed ZeRO-2: optimizer state and gradients split (`pip install deepspeed`)
    cpu              N processes on this machine's CPU, gloo backend (what the tests run)

Why not `accelerate launch --cpu`: that flag picks accelerate's single-process launcher
(accelerate 1.15, `launch_command`: `elif args.multi_gpu and not args.cpu` ... `else:
simple_launcher`), so `--cpu --num_processes 2` trains in one process. The cpu config uses
the torchrun launcher (distributed_type MULTI_GPU); each rank lands on the CPU because the
recipe sets `use_cpu` where there is no GPU, and accelerate then picks gloo."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ...errors import BadInputError

CONFIG_DIR = Path(__file__).resolve().parent
SHIPPED_CONFIGS = ("ddp", "fsdp", "deepspeed-zero2", "cpu")
# After SIGTERM the launcher gives the ranks this long to finish their step, save a checkpoint
# and exit before it kills them (torch elastic's own default, 30 s, is short for a large model).
SHUTDOWN_GRACE_S = 300


def resolve_config_name(config: str) -> str:
    """A shipped config's name as it is; the path of an existing file, made absolute (so a
    resumed job finds it from any folder). ValueError (for the spec's validator) otherwise."""
    if config in SHIPPED_CONFIGS:
        return config
    path = Path(config).expanduser()
    if path.is_file():
        return str(path.resolve())
    raise ValueError(f"{config!r} is neither a shipped accelerate config ({', '.join(SHIPPED_CONFIGS)}) nor a file")


def launches(spec) -> bool:
    """Whether a job (its TrainSpec, or the resolved spec dict in its row) runs under `accelerate launch`."""
    if isinstance(spec, dict):
        return spec.get("processes", 1) > 1 or spec.get("accelerate_config") is not None
    return spec.processes > 1 or spec.accelerate_config is not None


def config_path(config: str | None) -> Path:
    """The file a job launches with; no config: ddp on a machine with a GPU, cpu without."""
    if config is None:
        import torch

        config = "ddp" if torch.cuda.is_available() else "cpu"
    return CONFIG_DIR / f"{config}.yaml" if config in SHIPPED_CONFIGS else Path(config)


def read_config(path: Path) -> dict:
    import yaml

    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BadInputError(f"{path}: cannot read the accelerate config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise BadInputError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(config, dict) or "distributed_type" not in config:
        raise BadInputError(f"{path}: an accelerate config is a mapping with a distributed_type",
                            "start from one of the shipped configs (docs/multi-gpu.md)")
    return config


def check(spec) -> None:
    """Refuse, before a job exists, a launch this machine cannot do."""
    import importlib.util

    import torch

    path = config_path(spec.accelerate_config)
    config = read_config(path)
    kind = str(config["distributed_type"]).upper()
    gpus = torch.cuda.device_count() if torch.cuda.is_available() and not config.get("use_cpu") else 0
    if kind in ("FSDP", "DEEPSPEED") and not gpus:
        # On a CPU accelerate quietly turns these into plain data parallel (MULTI_CPU, every rank holding
        # the whole model): checked with accelerate 1.15 and transformers 5.24. Say so instead.
        name = "FSDP" if kind == "FSDP" else "DeepSpeed"
        raise BadInputError(f"{path.name}: {name} shards the model across GPUs, and "
                            + ("this config sets use_cpu" if config.get("use_cpu") else "this machine has none"),
                            "use accelerate_config: cpu to run several processes on this CPU (data parallel)")
    if kind == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        raise BadInputError(f"{path.name} needs the deepspeed package, which tunesmith does not install",
                            "pip install deepspeed (it compiles CUDA ops: a CUDA toolkit must be present), "
                            "or use accelerate_config: fsdp")
    if gpus and spec.processes > gpus:
        raise BadInputError(f"the spec asks for {spec.processes} processes, and this machine has {gpus} GPU(s)",
                            f"set processes to {gpus} or fewer (one process per GPU)")


def launch_command(job_id: str, spec, resume: bool = False) -> list[str]:
    """The command line that trains job `job_id` on `spec.processes` processes."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(config_path(spec.accelerate_config)),
        "--num_processes", str(spec.processes),  # the spec decides; the config's own num_processes is a default
        "--num_machines", "1",  # tunesmith launches on this machine; several machines: run `accelerate launch` yourself
        "--main_process_port", "0",  # a free port, so two jobs on one machine do not collide
        "-m", "tunesmith.train.worker", job_id, "--launched",
    ] + (["--resume"] if resume else [])


def start(job_id: str, spec, log_path: Path, resume: bool = False) -> subprocess.Popen:
    """Start the launcher in a new session, its output (and every rank's) appended to the job's log."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.setdefault("TORCH_ELASTIC_SHUTDOWN_TIMEOUT", str(SHUTDOWN_GRACE_S))
    if read_config(config_path(spec.accelerate_config)).get("use_cpu"):
        env["CUDA_VISIBLE_DEVICES"] = ""  # the ranks see no GPU, so the recipe trains on the CPU (gloo)
    with open(log_path, "ab") as log:
        return subprocess.Popen(launch_command(job_id, spec, resume), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True, env=env)


def rank() -> int:
    """This process's rank under a launcher (torchrun sets RANK); 0 when not launched."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """How many processes train together (torchrun sets WORLD_SIZE); 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def die_with_launcher() -> None:
    """Ask Linux to kill this rank when its parent (the launcher) dies. torch elastic starts each
    rank in a session of its own, so a `kill -9` of the launcher would otherwise leave the ranks
    training, unseen by `tunesmith jobs` (which watches the launcher's pid)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    PR_SET_PDEATHSIG = 1
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the launcher died before the request took effect
        os._exit(1)
