import subprocess, sys, tempfile, time
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/scratch"); sys.path.insert(0, "/work/main/fuzz")
import bnn_models
from binarynet import bnnfile, engine
from emit import emit
HERE = Path(__file__).parent
BOARDS = {
    "m3": ("mps2-an385", ["-mcpu=cortex-m3", "-mfloat-abi=soft"], (0x0, 4 << 20, 0x20000000, 4 << 20)),
    "m4": ("mps2-an386", ["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], (0x0, 4 << 20, 0x20000000, 4 << 20)),
    "m7": ("mps2-an500", ["-mcpu=cortex-m7", "-mfloat-abi=hard", "-mfpu=fpv5-d16"], (0x0, 4 << 20, 0x20000000, 4 << 20)),
    "m55": ("mps3-an547", ["-mcpu=cortex-m55", "-mfloat-abi=hard"], (0x0, 512 << 10, 0x20000000, 512 << 10)),
}

def build(d, board, n_inputs, x):
    machine, cpu, (fo, fl, ro, rl) = BOARDS[board]
    ld = (HERE / "board.ld").read_text()
    for k, v in {"FLASH_ORIGIN": fo, "FLASH_LENGTH": fl, "RAM_ORIGIN": ro, "RAM_LENGTH": rl}.items():
        ld = ld.replace(f"@{k}@", hex(v))
    (d / f"{board}.ld").write_text(ld)
    rows = ",\n".join("{" + ",".join(map(str, img.reshape(-1))) + "}" for img in x)
    (d / "inputs.h").write_text(f"#define N_INPUTS {n_inputs}u\nstatic const uint8_t INPUTS[N_INPUTS][{x[0].size}] = {{{rows}}};\n")
    elf = d / f"{board}.elf"
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-O2", "-mthumb", *cpu, "-Wall", "-Wextra", "-Werror",
        "-ffunction-sections", "-fdata-sections", "-Wl,--gc-sections", "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs",
        f"-T{d / (board + '.ld')}", '-DMODEL_H="net.h"', "-DMODEL_INPUT_BYTES=NET_INPUT_BYTES",
        "-DMODEL_NUM_CLASSES=NET_NUM_CLASSES", "-DMODEL_ARENA_BYTES=NET_ARENA_BYTES", "-DMODEL_PREDICT=net_predict",
        f"-I{d}", str(HERE / "startup.c"), str(HERE / "mcu_main.c"), str(d / "net.c"), "-o", str(elf)], check=True)
    return elf

def run_board(elf, board):
    machine = BOARDS[board][0]
    out = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic",
        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", str(elf)],
        capture_output=True, timeout=600, stdin=subprocess.DEVNULL)
    return out.returncode, out.stdout.decode() + out.stderr.decode()

def check(seed, boards, n_img=8):
    rng = np.random.default_rng(seed)
    graph, tensors = bnn_models.random_model(bnn_models.RngChooser(rng))
    d = Path("/work/scratch/mcu/out"); d.mkdir(exist_ok=True)
    bnnfile.save(d / "m.bnn", graph, tensors)
    h, c, arena = emit(bnnfile.load(d / "m.bnn"), "net")
    (d / "net.h").write_text(h); (d / "net.c").write_text(c)
    m = engine.load(d / "m.bnn")
    x = bnn_models.random_input(rng, m.input_shape, n_img)
    want = m.scores(x, preprocess=False); cls = m.predict(x, preprocess=False)
    res = {}
    for b in boards:
        elf = build(d, b, n_img, x)
        rc, text = run_board(elf, b)
        if rc != 0: print(b, rc, repr(text[:300]))
        lines = text.strip().split("\n")
        bad = 0
        ticks = []
        for k in range(n_img):
            parts = lines[k].split()
            got = [int(p, 16) for p in parts[1:-1]]
            ticks.append(int(parts[-1][1:], 16))
            if int(parts[0], 16) != cls[k] or got != want[k].view(np.uint32).tolist():
                bad += 1
        res[b] = (rc, bad, ticks[0])
    return res

if __name__ == "__main__":
    boards = sys.argv[3].split(",")
    for seed in range(int(sys.argv[1]), int(sys.argv[2])):
        t = time.time()
        print(seed, check(seed, boards), f"{time.time() - t:.1f}s", flush=True)
