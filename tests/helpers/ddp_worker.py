"""Run under torchrun (or alone): a few training steps composed from attnlab's engine, then each rank saves
its weights and the training indices its sampler gave it. Used by tests/test_distributed.py."""

import json
import sys
from pathlib import Path

from safetensors.torch import save_file
from torch.nn.parallel import DistributedDataParallel

from attnlab.data.seeded import epoch_seed
from attnlab.engine.config import TrainConfig
from attnlab.engine.distributed import setup_distributed
from attnlab.engine.loop import train_one_epoch
from attnlab.engine.trainer import build_data, build_loaders, build_model, build_optimizer, seed_everything


def main(out: str) -> None:
    ctx = setup_distributed("cpu")
    config = TrainConfig.create(
        "classify",
        attention="se",
        stem="imagenet",
        epochs=1,
        batch_size=32,
        lr=0.05,
        train_limit=128,
        freeze_bn=True,
        seed=3,
    )
    task = config.new_task()
    data = build_data(config, task)
    model = build_model(config, task)
    loaders = build_loaders(data, config.recipe, task, ctx, workers=0)
    train, sampler = loaders.train, loaders.sampler
    optimizer, scheduler = build_optimizer(config.recipe, task, model, len(train))
    net = DistributedDataParallel(model) if ctx.distributed else model
    seed_everything(epoch_seed(config.recipe.seed, 0))
    sampler.set_epoch(0)
    data.train.set_epoch(0)
    indices = list(iter(sampler))
    train_one_epoch(net, train, optimizer, scheduler, ctx, task, freeze_bn=True)
    Path(out).mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, f"{out}/rank{ctx.rank}.safetensors")
    Path(f"{out}/indices{ctx.rank}.json").write_text(json.dumps(indices))
    ctx.close()


if __name__ == "__main__":
    main(sys.argv[1])
