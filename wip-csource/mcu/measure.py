"""Instruction counts per inference on Cortex-M under QEMU -icount (SysTick ticks × ns/tick)."""
import subprocess, sys, json
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, "/work/scratch"); sys.path.insert(0, "/work/scratch/mcu")
from binarynet import bnnfile, engine, export, models
from emit import emit
import check_mcu as c
NS_PER_TICK = {"m3": 40, "m4": 40, "m7": 40, "m55": 31.25}

def model_bnn(kind, path):
    torch.manual_seed(0)
    if kind == "mlp256":
        m = models.mnist_mlp(hidden=256, depth=2)
        shape = (28, 28)
    elif kind == "mlp2048":
        m = models.mnist_mlp(hidden=2048, depth=3)
        shape = (28, 28)
    elif kind == "cifar":
        m = models.cifar10_convnet()
        shape = (3, 32, 32)
    for mod in m.modules():  # random running statistics so thresholds are not trivial
        if hasattr(mod, "running_mean") and mod.running_mean is not None:
            mod.running_mean.uniform_(-20, 20); mod.running_var.uniform_(1, 50)
    export.export(m, path, input_shape=shape)

def measure(kind, boards, variants, n_img=2):
    d = Path(f"/work/scratch/mcu/out-{kind}"); d.mkdir(exist_ok=True)
    if not (d / "m.bnn").exists():
        model_bnn(kind, d / "m.bnn")
    bnn = bnnfile.load(d / "m.bnn")
    h, src, arena = emit(bnn, "net")
    (d / "net.h").write_text(h)
    m = engine.load(d / "m.bnn")
    x = np.random.default_rng(0).integers(0, 256, (n_img, *m.input_shape), dtype=np.uint8)
    want = m.scores(x, preprocess=False)
    rows = {}
    for v in variants:
        (d / "net.c").write_text(f"#define BNR_POPCOUNT_{v} 1\n" + src if v else src)
        for b in boards:
            elf = c.build(d, b, n_img, x)
            rc, text = c.run_board(elf, b)
            lines = text.strip().split("\n")
            ok = all([int(p, 16) for p in lines[k].split()[1:-1]] == want[k].view(np.uint32).tolist() for k in range(n_img))
            ticks = int(lines[-1].split()[-1][1:], 16)
            size = subprocess.run(["arm-none-eabi-size", str(elf)], capture_output=True, text=True).stdout
            rows[(v, b)] = (ok, int(ticks * NS_PER_TICK[b]))
            print(kind, v or "default", b, "exact" if ok else "WRONG", f"{int(ticks * NS_PER_TICK[b]):,} instructions", size.split("\n")[1], flush=True)
    return rows

if __name__ == "__main__":
    measure(sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",") if len(sys.argv) > 3 else [""])
