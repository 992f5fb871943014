"""The reference side of scripts/bench/ddp.sh: torch.distributed.all_reduce with Gloo, under
torchrun, same sizes and rounds as `cxr bench allreduce`; rank 0 prints one JSON line."""
import argparse, json, os, time
import torch
import torch.distributed as dist

p = argparse.ArgumentParser()
p.add_argument("--sizes", default="1,25,350")
p.add_argument("--rounds", type=int, default=5)
a = p.parse_args()
dist.init_process_group("gloo")
rank, world = dist.get_rank(), dist.get_world_size()
seconds = {}
for mib in [int(s) for s in a.sizes.split(",")]:
    t = torch.full((mib << 18,), 1.0, dtype=torch.float32)
    dist.all_reduce(t)
    times = []
    for _ in range(a.rounds):
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        times.append(time.perf_counter() - t0)
    seconds[str(mib)] = sorted(times)[len(times) // 2]
if rank == 0:
    print(json.dumps({"side": "pytorch", "world": world, "median_seconds": seconds}, sort_keys=True))
dist.destroy_process_group()
