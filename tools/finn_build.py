"""FINN's compiler on a binarynet QONNX export: its default steps to hardware layers, FINN's own
executor on the result against the engine's scores, and FINN's estimate reports.

Runs in the FINN environment (``make test-finn`` builds it: finn-plus, no Vivado), not in
binarynet's: it reads the ``.onnx`` file and an ``.npz`` of uint8 images with the engine's
scores (``images``, ``scores``), both written by the caller, and imports nothing of binarynet.

    python tools/finn_build.py MODEL.onnx CASE.npz OUT_DIR [--fps N] [--part PART]

Steps, FINN's defaults in their order: ``step_qonnx_to_finn``, ``step_tidy_up``,
``step_streamline``, ``step_convert_to_hw``, ``step_create_dataflow_partition``,
``step_specialize_layers`` (for ``--part``, the Pynq-Z1/Z2's Zynq by default), then
``step_target_fps_parallelization`` (``--fps``), ``step_apply_folding_config`` and
``step_generate_estimate_reports``. Checked: one dataflow partition holding only hardware
layers (no MatMul, Conv or Im2Col left), every binary layer an MVAU in XNOR mode; FINN's
``execute_onnx`` on the parent graph (the partition run by FINN's Python simulation of each
layer) gives the engine's classes on every image and its scores within float32 rounding of the
affine FINN folds. Writes ``OUT_DIR/summary.json`` (layers, agreement, FINN's estimates) and
prints it; exits 1 on any check that fails.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np


def _finn() -> Any:
    """FINN's builder, importable without its CLI and without Vivado."""
    from finn.util.settings import initialize_dummy_settings

    initialize_dummy_settings()
    import finn.xsi

    finn.xsi.SimEngine = None  # RTL simulation needs Vivado's XSI; the python path does not
    import finn.builder.build_dataflow_steps as steps

    return steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("case", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--fps", type=int, default=10000, help="target frames per second")
    parser.add_argument("--part", default="xc7z020clg400-1", help="FPGA part (Pynq-Z1/Z2)")
    parser.add_argument("--clock-ns", type=float, default=10.0, help="clock period (100 MHz)")
    args = parser.parse_args(argv)

    steps = _finn()
    from finn.builder.build_dataflow_config import DataflowBuildConfig, DataflowOutputType
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    args.out.mkdir(parents=True, exist_ok=True)
    cfg = DataflowBuildConfig(
        output_dir=str(args.out),
        fpga_part=args.part,
        synth_clk_period_ns=args.clock_ns,
        target_fps=args.fps,
        generate_outputs=[DataflowOutputType.ESTIMATE_REPORTS],
        save_intermediate_models=True,
        verify_steps=[],
    )
    model = ModelWrapper(str(args.model))
    for step in (
        steps.step_qonnx_to_finn,
        steps.step_tidy_up,
        steps.step_streamline,
        steps.step_convert_to_hw,
    ):
        model = step(model, cfg)
    hw_graph = model
    dataflow = steps.step_create_dataflow_partition(model, cfg)
    dataflow = steps.step_specialize_layers(dataflow, cfg)
    parent = ModelWrapper(str(cfg.get_intermediate_models_directory() / "dataflow_parent.onnx"))

    problems: list[str] = []
    layers = [n.op_type for n in dataflow.graph.node]
    foreign = [n.op_type for n in dataflow.graph.node if "fpgadataflow" not in n.domain]
    if foreign:
        problems.append(f"not hardware layers in the partition: {foreign}")
    left = [n.op_type for n in parent.graph.node if n.op_type in ("MatMul", "Conv", "Im2Col")]
    if left:
        problems.append(f"left outside the partition: {left}")
    partitions = [n for n in parent.graph.node if n.op_type == "StreamingDataflowPartition"]
    if len(partitions) != 1:
        problems.append(f"{len(partitions)} dataflow partitions, expected 1")
    mvaus = [n for n in dataflow.graph.node if n.op_type.startswith("MVAU")]
    xnor = [getCustomOp(n).get_nodeattr("binaryXnorMode") for n in mvaus]

    # FINN's executor on the HW-layer graph (before specialisation: each layer's Python model)
    case = np.load(args.case)
    images, expected = case["images"], case["scores"]
    iname, oname = hw_graph.graph.input[0].name, hw_graph.graph.output[0].name
    shape = hw_graph.get_tensor_shape(iname)
    scores = np.concatenate(
        [
            execute_onnx(hw_graph, {iname: x.reshape(shape).astype(np.float32)})[oname]
            for x in images
        ]
    ).reshape(expected.shape)
    same_class = int((scores.argmax(axis=1) == expected.argmax(axis=1)).sum())
    score_diff = float(np.max(np.abs(scores - expected)))
    scale = float(np.max(np.abs(expected)))
    if same_class != len(images):
        problems.append(f"classes equal to the engine's on {same_class} of {len(images)} images")
    if score_diff > 1e-5 * max(scale, 1.0):
        problems.append(f"scores differ from the engine's by up to {score_diff}")

    # FINN's folding for the target frame rate, and its estimates
    folded = steps.step_target_fps_parallelization(dataflow, cfg)
    folded = steps.step_apply_folding_config(folded, cfg)
    steps.step_generate_estimate_reports(folded, cfg)
    reports = Path(cfg.get_report_directory())
    resources = json.loads((reports / "estimate_layer_resources.json").read_text())
    performance = json.loads((reports / "estimate_network_performance.json").read_text())

    summary = {
        "model": str(args.model),
        "part": args.part,
        "clock_ns": args.clock_ns,
        "target_fps": args.fps,
        "hardware_layers": layers,
        "mvau_xnor_mode": xnor,
        "outside_partition": [n.op_type for n in parent.graph.node],
        "images": len(images),
        "classes_equal": same_class,
        "max_score_difference": score_diff,
        "estimate_total": resources.get("total"),
        "estimate_performance": performance,
        "problems": problems,
    }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    if problems:
        print("FINN check failed: " + "; ".join(problems), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
