import subprocess, sys, tempfile
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/scratch"); sys.path.insert(0, "/work/main/fuzz")
import bnn_models
from binarynet import bnnfile, engine
from emit import emit

def run(seed, n_img=20, cflags=()):
    rng = np.random.default_rng(seed)
    graph, tensors = bnn_models.random_model(bnn_models.RngChooser(rng))
    d = Path(tempfile.mkdtemp())
    bnnfile.save(d / "m.bnn", graph, tensors)
    bnn = bnnfile.load(d / "m.bnn")
    h, c, arena = emit(bnn, "net")
    (d / "net.h").write_text(h); (d / "net.c").write_text(c)
    up = "NET"
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-O2", *cflags]
    exe = d / "a.out"
    subprocess.run(["cc", *flags, f'-DMODEL_H="net.h"', f"-DMODEL_INPUT_BYTES={up}_INPUT_BYTES",
        f"-DMODEL_NUM_CLASSES={up}_NUM_CLASSES", f"-DMODEL_ARENA_BYTES={up}_ARENA_BYTES",
        "-DMODEL_PREDICT=net_predict", f"-I{d}", "host_main.c", str(d / "net.c"), "-o", str(exe)], check=True)
    m = engine.load(d / "m.bnn")
    x = bnn_models.random_input(rng, m.input_shape, n_img)
    out = subprocess.run([str(exe)], input=x.tobytes(), capture_output=True, check=True).stdout.decode().split("\n")
    want = m.scores(x, preprocess=False)
    cls = m.predict(x, preprocess=False)
    bad = 0
    for k in range(n_img):
        parts = out[k].split()
        got = np.array([int(p, 16) for p in parts[1:]], dtype=np.uint32).view(np.float32)
        if int(parts[0]) != cls[k] or got.view(np.uint32).tolist() != want[k].view(np.uint32).tolist():
            bad += 1
    return bad, arena, [op["type"] for op in graph["ops"]]

for seed in range(int(sys.argv[1]), int(sys.argv[2])):
    bad, arena, ops = run(seed, cflags=tuple(sys.argv[3:]))
    if bad: print("SEED", seed, "bad", bad, ops)
print("done")
