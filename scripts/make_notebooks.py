"""Write every notebook of ``notebooks/`` (01–14: title, parameters, calls into ``lib``), without outputs.

This file is the notebooks' only source: edit a cell here, never the ``.ipynb``, then run
``python scripts/make_notebooks.py`` and commit the notebooks it wrote beside this file. A cell is
``(kind, text, metadata)``; the parameters shared by several notebooks are the constants below.

``python scripts/make_notebooks.py --check`` writes nothing and exits with 1, naming each notebook whose file
differs from what it would write, each one it would write that is missing and each ``.ipynb`` it does not write
(``tests/test_notebook_sources.py`` runs it). ``--dir DIR`` writes or checks DIR instead of ``notebooks/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from lib.kernel import KERNEL_DISPLAY_NAME, KERNEL_NAME  # noqa: E402 -- the repository's lib, as the notebooks import it

OUTPUT_ROOT_PARAM = 'OUTPUT_ROOT = "outputs"  # output root, relative to the repository root\n'

# the parameters of a notebook that runs experiments (notebooks 02, 03, 05–12)
RUN_PARAMS = 'PROFILE = "tiny"  # profile name: outputs go to OUTPUT_ROOT/PROFILE/\n' + OUTPUT_ROOT_PARAM + '''\
DATASETS = ["synthetic"]  # MLR datasets notebook 01 built (built here with its defaults if missing)
DATA_ROOT = ""  # folder of a real dataset, or the folder holding several (used only when a manifest is missing)
CONFIG = "configs/pshrnet/tiny.yaml"  # the method configuration; configs/pshrnet/paper.yaml is the paper setting
SEED = 0  # seed of the MLR dataset and of training
SPLITS = [0]  # identity splits to train and evaluate
OVERRIDES = {}  # dotted configuration keys to change, e.g. {"phase1.epochs": 10, "data.height": 128}
WEIGHTS = {}  # backbone -> weight source for every row using it, e.g. {"resnet50": "file:/w/resnet50.pth"} (docs/getting_started.md)
'''

BOOTSTRAP_PARAM = 'BOOTSTRAP = 1000  # bootstrap replicates of the 95 % interval on each effect (docs/intervals.md)\n'

COMMON = RUN_PARAMS + BOOTSTRAP_PARAM

FTWA_COMMON = COMMON.replace("configs/pshrnet/tiny.yaml", "configs/ftwa/tiny.yaml").replace(
    "configs/pshrnet/paper.yaml", "configs/ftwa/paper.yaml").replace('"phase1.epochs"', '"train.epochs"')

# every notebook's parameters as one dict, for the calls into lib
PARAMS = "params = {k: v for k, v in dict(globals()).items() if k.isupper()}\n"


def table_cell(table: str, files: bool = False) -> str:
    """The cell that runs a table's variants and shows the table, then its figures; ``files``: first print the files
    it wrote."""
    return ("from IPython.display import Markdown, display\n\nfrom lib.viz import show_saved\n"
            "from lib.workflow import run_and_tabulate\n\n" + PARAMS
            + f'report = run_and_tabulate(params, "{table}")\n'
            + ('print("\\n".join(map(str, report.files)))\n' if files else "")
            + "display(Markdown(report.markdown))\nshow_saved(report.files);")


NOTEBOOKS = {
    "01_dataset_synthesis": [
        ("markdown", "# 01 · Dataset synthesis: building an MLR (multiple low-resolution) dataset\n\n"
         "Cross-resolution re-ID matches **low-resolution (LR) queries** against a **high-resolution (HR) gallery**.\n"
         "Public benchmarks (MLR-VIPeR, MLR-CUHK03, MLR-Market-1501, MLR-DukeMTMC-reID) are made by down-sampling one\n"
         "camera of an ordinary re-ID dataset by a rate $r \\in \\{2,3,4\\}$; CAVIAR is natively cross-resolution.\n"
         "No public generator exists, so this notebook builds them — seeded and logged — as fixed in `PROTOCOL.md` §1:"
         "\n\n"
         "* LR images are stored at their **true size** $H/r \\times W/r$ (not pre-upsampled), bicubic with "
         "antialiasing;\n"
         "* a **manifest** (`manifest.json`) records the source, seed, LR camera(s), $r$ per image, interpolation,\n"
         "  identity splits and the sha256 of the source file list — every later table row names the manifest it "
         "used;\n"
         "* query = LR images, gallery = HR images.\n\n"
         "With the default (tiny) parameters it runs on the embedded **synthetic pedestrians**, drawn in seconds.\n"
         "Point `DATASET` / `DATA_ROOT` at a real dataset in its original release layout to build the real thing\n"
         "(`params/viper.yaml`, `params/caviar.yaml`). The same code is on the command line: "
         "`python -m lib.mlr --help`.", {}),
        ("code", 'PROFILE = "tiny"  # profile name: outputs go to OUTPUT_ROOT/PROFILE/\n' + OUTPUT_ROOT_PARAM
         + 'DATASET = "synthetic"  # synthetic | viper | caviar | cuhk03 | market1501 | dukemtmc | any other name: a CSV dataset\n'
         'DATA_ROOT = ""  # the folder of the dataset or one holding it (release, torchreid or fast-reid layout; CSV: its manifest.csv); empty for synthetic\n'
         'SEED = 0  # seeds the synthetic data, the LR camera, the rates r and the identity splits\n'
         'RATES = [2, 3, 4]  # down-sampling rates r\n'
         'INTERPOLATION = "bicubic"  # bicubic | bilinear | lanczos | nearest\n'
         'ANTIALIAS = True  # low-pass filter before down-sampling\n'
         'NUM_SPLITS = 0  # number of random identity splits; 0 means the protocol default (10)\n'
         'SPLIT_FILE = ""  # VIPeR, CUHK03: identity splits from a torchreid split file (a path, or "torchreid": the one beside the data)\n'
         'SYN_NUM_IDENTITIES = 24  # synthetic: number of identities\n'
         'SYN_NUM_CAMERAS = 3  # synthetic: number of cameras\n'
         'SYN_IMAGES_PER_CAMERA = 2  # synthetic: images per identity and camera\n'
         'SYN_HEIGHT = 128  # synthetic: HR image height (px)\n'
         'SYN_WIDTH = 64  # synthetic: HR image width (px)\n'
         'GRID_IDENTITIES = 4  # identities shown in the example grid', {"tags": ["parameters"]}),
        ("code", "import json\n\nimport pandas as pd\n\nfrom lib.data import MLRDataset\n"
         "from lib.utils import atomic_write_json, seed_everything\n"
         "from lib.viz import identity_grid, rate_histogram, show_figure\n"
         "from lib.workflow import dataset_info, output_dir, prepare_dataset\n\n" + PARAMS
         + 'seed_everything(SEED)\nout_dir = output_dir(params)\nfig_dir = out_dir / "figures"\n'
         'info = dataset_info(DATASET)\nprint(f"dataset {info.name}: {info.layout}")', {}),
        ("markdown", "## 1. Source data and MLR synthesis\n"
         "For `synthetic`, the identities are drawn first: look-alike groups share every coarse attribute (colours,\n"
         "garment shapes) and differ only in fine detail (patterns, small emblems) that down-sampling destroys — so\n"
         "resolution genuinely matters. Real datasets are read from their original release layout; a folder that\n"
         "does not match gets an error saying what was expected and what was found.\n\n"
         "Then one camera (VIPeR: `cam_a`; CUHK03: the first of each pair; Market/Duke/CSV/synthetic: one camera drawn\n"
         "from the seed) becomes low-resolution. Re-running with the same parameters reuses the existing manifest;\n"
         "the same seed always gives byte-identical files.", {}),
        ("code", "manifest_path = prepare_dataset(params)\nds = MLRDataset.load(manifest_path)\nsummary = ds.summary()\n"
         'print(json.dumps({k: v for k, v in summary.items() if k != "split0"}, indent=1))\n'
         'pd.DataFrame([ds.manifest["source"]])', {}),
        ("code", 'pd.DataFrame([ds.split(k).summary() for k in range(ds.num_splits)]).set_index("split")', {}),
        ("markdown", "## 2. What the query camera sees\n"
         "Each row is one test identity in every camera; LR images are drawn at their **true pixel size** beside the\n"
         "HR original they were made from. Below, the distribution of $r$ over the synthesised LR images.", {}),
        ("code", "fig = identity_grid(ds, GRID_IDENTITIES, seed=SEED)\n"
         'grid_path = show_figure(fig, fig_dir / f"01_{info.name}_examples.png")', {}),
        ("code", 'fig = rate_histogram(ds)\nhist_path = show_figure(fig, fig_dir / f"01_{info.name}_rates.png")', {}),
        ("markdown", "## 3. Record\n"
         "The summary (with the manifest's path and the sha256 of the source file list) goes next to the figures;\n"
         "notebooks 02–03 load the dataset from the manifest.", {}),
        ("code", 'record = {"profile": PROFILE, "manifest": str(manifest_path), "figures": [str(grid_path), '
         'str(hist_path)], **summary}\n'
         'record_path = atomic_write_json(out_dir / "metrics" / f"01_{info.name}_dataset.json", record)\n'
         'print(f"manifest: {manifest_path}\\nsummary:  {record_path}\\nfigures:  {grid_path.name}, '
         '{hist_path.name}")', {}),
    ],
    "02_phase1_hr_reid": [
        ("markdown", "# 02 · Phase 1: the HR teacher, HRNet-ReID-H\n\n"
         "PS-HRNet's first phase (paper Sec. III-D) trains **HRNet-ReID** on high-resolution images only, with the\n"
         "identity loss $\\mathcal{L}_{ID} = \\lambda_{CE}\\,\\mathcal{L}_{CE} + \\lambda_{BH}\\sum_t "
         "\\mathcal{L}_{BH}(Seq^{(t)})$\n"
         "(Eq. 10: label-smoothed cross entropy on $\\ell_c$ plus batch-hard triplet losses on the five pooled\n"
         "sequences). The model becomes the frozen teacher of phase 2.\n\n"
         "HRNet-ReID (Sec. III-C, Fig. 4): the four branches of HRNet-W32's `incre` stage are pooled with\n"
         "$AAP(f_n, g_n) + \\lambda_n AMP(f_n, g_n)$ on grids 4×4, 2×2, 2×2, 1×1 into $Seq^{(1..4)}$, concatenated "
         "into\n"
         "$Seq^{(5)}$, then FC1 (512, $\\ell_f$) and FC2 ($\\ell_c$). The same head runs on any registered backbone: "
         "the tiny\n"
         "configuration uses MobileNetV2 at 64×32 so the notebook runs in seconds on a CPU. Every setting lives in\n"
         "`CONFIG` (`configs/pshrnet/*.yaml`); change one with `OVERRIDES`.\n\n"
         "The teacher is evaluated twice: **HR query vs HR gallery** (its own task) and **LR query vs HR gallery**\n"
         "(what happens without any super-resolution).", {}),
        ("code", RUN_PARAMS, {"tags": ["parameters"]}),
        ("code", "from lib.models import build_reid_model\nfrom lib.viz import show_figure, training_curves\n"
         "from lib.workflow import experiment_config, output_dir, results_frame, run_experiment, stage_histories\n\n"
         + PARAMS + "cfg = experiment_config(params)\ncfg.phase1", {}),
        ("markdown", "## 1. The model", {}),
        ("code", "probe = build_reid_model(cfg.model, num_classes=10)\n"
         '{"Seq dims": probe.seq_dims, "test feature": probe.test_dim,\n'
         ' "parameters (M)": round(sum(p.numel() for p in probe.parameters()) / 1e6, 2)}', {}),
        ("markdown", "## 2. Training\n"
         "One run per dataset and split, in `outputs/<profile>/runs/pshrnet/<dataset>/stages/split<k>/phase1-<hash>/`"
         "\n(the hash is the run's identity: the settings it reads); a checkpoint every epoch (an interrupted run "
         "resumes\n"
         "from it), `history.csv`, `metrics.json`. A finished run with the same identity is reused.", {}),
        ("code", 'exp = run_experiment(params, {"default": {}}, {"default": ["teacher_lr", "teacher_hr"]})\n'
         'fig = training_curves(stage_histories(exp, "phase1"), keys=("loss_total", "loss_ce", "loss_bh"))\n'
         'show_figure(fig, output_dir(params) / "figures" / "02_phase1_losses.png")', {}),
        ("markdown", "## 3. Evaluation\n"
         "Mean ± std over the splits run (%); `teacher_lr`: LR queries without SR, `teacher_hr`: HR queries.", {}),
        ("code", "results_frame(exp)", {}),
    ],
    "03_phase2_pseudo_siamese": [
        ("markdown", "# 03 · Phase 2: the pseudo-siamese student, VDSR-CA → HRNet-ReID-L\n\n"
         "The phase-1 model is frozen as the **teacher** (eval mode, fed the HR image $x_h$). The **student** is the\n"
         "SR module (VDSR-CA) followed by HRNet-ReID-L, fed the LR image $x_l$ of the same pair (both resized to the\n"
         "network size, identical augmentation). It is trained with (Eq. 12)\n\n"
         "$$\\mathcal{L} = \\mathcal{L}_{ID} + \\lambda_{SR}\\,\\|G(x_l) - x_h\\|_1 + \\lambda_{PS} \\sum_{c \\in C} "
         "\\|c_{teacher}(x_h) - c_{student}(x_l)\\|_1$$\n\n"
         "with $C = \\{Seq^{(1)}, Seq^{(4)}, Seq^{(5)}, \\ell_c\\}$ (Table VII's best). At test time query (LR) and\n"
         "gallery (HR) both go through VDSR-CA + HRNet-ReID-L. The loss terms and their weights are `phase2.losses` of "
         "the\n"
         "configuration; natively LR training images (CAVIAR camera 2) enter with the identity terms only.\n\n"
         "For comparison, a **baseline**: the same network trained on bicubic-upsampled LR images with "
         "$\\mathcal{L}_{ID}$\n"
         "only (no SR, no teacher), from the same initial weights, for as many epochs as both phases together. This\n"
         "notebook runs Table I's variant (`configs/tables/table1.yaml`); notebook 04 builds the table.", {}),
        ("code", RUN_PARAMS + "RUN_BASELINE = True  # also train the bicubic + ID baseline\n"
         "NUM_EXAMPLES = 4  # LR / restored / HR examples to show", {"tags": ["parameters"]}),
        ("code", "from lib.viz import rank1_per_split, restoration_examples, rows_by_dataset, show_figure, "
         "training_curves\nfrom lib.workflow import output_dir, results_frame, run_table, stage_histories\n\n"
         + PARAMS + "out_dir = output_dir(params)", {}),
        ("markdown", "## 1. Teacher, student, baseline\n"
         "The teacher is notebook 02's run (trained here only if it is missing; the same identity is the same "
         "folder).\nEach stage resumes from its last checkpoint if interrupted.", {}),
        ("code", 'exp, spec, rows = run_table(params, "table1", extra_outputs=["teacher_lr", "teacher_hr"],\n'
         '                            skip_outputs=[] if RUN_BASELINE else ["baseline"])\n'
         'histories = {f"{stage} {k}": h for stage in ("phase2", "baseline") for k, h in stage_histories(exp, '
         'stage).items()}\n'
         'show_figure(training_curves(histories), out_dir / "figures" / "03_phase2_losses.png")', {}),
        ("markdown", "## 2. Cross-resolution results\n"
         "LR query vs HR gallery, mean ± sample std over the splits run (%). *teacher_lr* is the phase-1 model fed "
         "the\nbilinear-upsampled LR query directly; *teacher_hr* its upper bound on HR queries.", {}),
        ("code", 'labels = {"pshrnet": "PS-HRNet (SR+ID+PS)", "baseline": "bicubic + ID baseline", "teacher_lr": '
         '"teacher, no SR (LR query)",\n          "teacher_hr": "teacher (HR query)"}\nresults_frame(exp, labels)',
         {}),
        ("code", "per_dataset = {ds: rec for (v, ds), rec in exp.summaries.items()}\n"
         'show_figure(rank1_per_split(per_dataset, labels), out_dir / "figures" / "03_rank1_per_split.png")', {}),
        ("markdown", "## 3. What the SR module does to a query\n"
         "LR query images (true size), their bilinear upsampling, the student's SR output and the HR original, with "
         "PSNR\nagainst the HR image (first dataset, first split).", {}),
        ("code", "(variant, ds_name, k), runs = next(iter(exp.runs.items()))\ncfg = exp.configs[variant]\n"
         'fig = restoration_examples(runs["phase2"].modules["sr"], exp.datasets[ds_name].split(k).query, '
         "cfg.data.size,\n                           num=NUM_EXAMPLES, seed=SEED)\n"
         'show_figure(fig, out_dir / "figures" / f"03_{ds_name}_restorations.png")', {}),
    ],
    "04_table1": [
        ("markdown", "# 04 · Table I: cross-resolution re-ID, paper vs reproduced\n\n"
         "Every row of the paper's Table I comes from the registry (`lib/paper_numbers/paper_results.yaml`); the "
         "reproduced\n"
         "rows come only from this profile's runs (`outputs/<profile>/results/pshrnet/<dataset>/default.json`, "
         "written by\n"
         "notebook 03). Datasets without a run are listed as missing. Written to "
         "`outputs/<profile>/tables/table1.{csv,md}`;\n"
         "the table's spec is `configs/tables/table1.yaml`.", {}),
        ("code", 'PROFILE = "tiny"  # profile whose runs are gathered\n' + OUTPUT_ROOT_PARAM + BOOTSTRAP_PARAM,
         {"tags": ["parameters"]}),
        ("code", "from IPython.display import Markdown\n\nfrom lib.results import load_summaries\n"
         "from lib.viz import rank1_per_split, show_figure\nfrom lib.workflow import make_table, output_dir\n\n"
         + PARAMS + 'long, markdown, paths = make_table(params, "table1")\n'
         'print("\\n".join(map(str, paths)))\nMarkdown(markdown)', {}),
        ("markdown", "## Rank-1 per method and dataset\n"
         "One dot per identity split, the bar at the mean (LR query vs HR gallery; the teacher's HR-query row is its "
         "own task).", {}),
        ("code", 'summaries = {ds: rec for (m, v, ds), rec in load_summaries(output_dir(params), "pshrnet").items() '
         'if v == "default"}\nif summaries:\n'
         '    labels = {"pshrnet": "PS-HRNet", "baseline": "bicubic + ID", "teacher_lr": "teacher, LR query", '
         '"teacher_hr": "teacher, HR query"}\n'
         '    show_figure(rank1_per_split(summaries, labels), output_dir(params) / "figures" / "rank1_per_split.png")'
         '\nelse:\n    print("no notebook-03 summaries for this profile yet")', {}),
    ],
    "05_ablation_losses": [
        ("markdown", "# 05 · Table II: which losses matter\n\n"
         "Phase 2's student (VDSR-CA → HRNet-ReID-L) trained with **ID** ($\\mathcal{L}_{ID}$ only), **SR+ID**\n"
         "(+ $\\lambda_{SR}\\mathcal{L}_{SR}$) and **SR+ID+PS** (+ $\\lambda_{PS}\\mathcal{L}_{PS}$: the full "
         "method). Each\n"
         "variant is the configuration plus a few overrides (`configs/tables/table2.yaml`: `phase2.losses.ps: 0` …); "
         "all\nthree share phase 1 (one teacher per split) and SR+ID+PS shares Table I's run.\n\n"
         "The paper ran this table on MLR-Market-1501; where it is absent the datasets present are used and the\n"
         "substitution is stated above the table, with each variant's effect against the full method beside the "
         "paper's.", {}),
        ("code", RUN_PARAMS + 'VARIANTS = ["id", "sr_id", "sr_id_ps", "sr_id_written", "sr_id_ps_written"]  # '
         "variants of configs/tables/table2.yaml to run\n" + BOOTSTRAP_PARAM, {"tags": ["parameters"]}),
        ("code", table_cell("table2", files=True), {}),
    ],
    "06_ablation_ps_components": [
        ("markdown", "# 06 · Table VII: which outputs the pseudo-siamese loss compares\n\n"
         "$\\mathcal{L}_{PS} = \\sum_{c \\in C} \\|c_h - c_l\\|_1$ (Eq. 11) over a subset $C$ of\n"
         "$A = \\{Seq^{(1)}, \\dots, Seq^{(5)}, \\ell_c\\}$. The paper compares $\\{Seq^{(5)}, \\ell_c\\}$, all six, "
         "and\n"
         "$\\{Seq^{(1)}, Seq^{(4)}, Seq^{(5)}, \\ell_c\\}$ (its choice), and writes that a better combination may "
         "exist:\n"
         '`VARIANTS = "all"` trains every non-empty subset (63 variants — for GPU users), ranked in a table and a '
         "plot.\n"
         "Every variant shares phase 1 (one teacher per split); variants are defined in "
         "`configs/tables/table7.yaml`.", {}),
        ("code", RUN_PARAMS + 'VARIANTS = ["seq5_lc", "all_seq_lc", "seq1_seq4_seq5_lc"]  # variants of '
         'configs/tables/table7.yaml, or "all" (63)\n' + BOOTSTRAP_PARAM, {"tags": ["parameters"]}),
        ("code", table_cell("table7"), {}),
        ("markdown", "## Ranking\n"
         "Variants ranked by Rank-1 (%), averaged over the datasets run; `tables/table7_ranking.md` and "
         "`figures/table7_ranking.png`.", {}),
        ("code", "report.ranking", {}),
    ],
    "07_ablation_sr_modules": [
        ("markdown", "# 07 · Table IV: which SR module\n\n"
         "Each SR module $G$ — **bicubic** (no learned SR), **SRCNN** (9-5-5), **VDSR** (20 × 64), **RCAN** (residual "
         "groups of channel-attention blocks; a reduced size by default), **VDSR-CA** (PS-HRNet's) — in front of the "
         "same BNNeck re-ID network (ResNet-50 in the paper), trained jointly with $\\mathcal{L}_{ID} + \\lambda_{SR}"
         "\\mathcal{L}_{SR}$ (no $\\mathcal{L}_{PS}$); LR query through $G$ vs HR gallery. Variants: "
         "`configs/tables/table4.yaml` (one `sr.name` each on a common `base`). A profile without ImageNet ResNet-50 "
         "weights keeps its own backbone, and the table says which.", {}),
        ("code", COMMON + 'VARIANTS = ["t4_bicubic", "t4_srcnn", "t4_vdsr", "t4_rcan", "t4_vdsr_ca"]  # variants of '
         'configs/tables/table4.yaml', {"tags": ["parameters"]}),
        ("code", table_cell("table4"), {}),
        ("markdown", "## Ranking\nModules ranked by Rank-1 (%), averaged over the datasets run.", {}),
        ("code", "report.ranking", {}),
    ],
    "08_restoration_quality": [
        ("markdown", "# 08 · Table III and Fig. 5: how well the images are restored\n\n"
         "PSNR and SSIM (scikit-image) of the restored test queries against their HR originals, per down-sampling "
         "rate $r$ and overall, beside Rank-1, for **Bicubic**, **Solo SR** (VDSR-CA trained with "
         "$\\mathcal{L}_{SR}$ only; its Rank-1 is the phase-1 teacher's on its restorations), **SR+ID** and "
         "**SR+ID+PS** (Table II's students: the same runs). Fig. 5 shows test persons at $r$ = 2, 3, 4: the LR image "
         "at its true size, each restoration with its PSNR, and the HR original.", {}),
        ("code", COMMON + 'VARIANTS = ["bicubic", "solo_sr", "sr_id", "sr_id_ps"]  # variants of configs/tables/'
         'table3.yaml\nNUM_EXAMPLES = 2  # test persons shown in Fig. 5, each at the rates 2, 3 and 4', {"tags": ["parameters"]}),
        ("code", table_cell("table3"), {}),
        ("markdown", "## PSNR and SSIM against the down-sampling rate\n"
         "`tables/table3_per_rate.md` and `figures/table3_quality_vs_rate.png` (mean over splits).", {}),
        ("code", 'quality = report.extras["restoration"]\nquality.per_rate', {}),
        ("code", "quality.rate_figure", {}),
        ("markdown", "## Fig. 5\nLR (true size) · each restoration with its PSNR · HR; `figures/fig5.png`.", {}),
        ("code", "quality.fig5", {}),
        ("markdown", "## Does Solo SR beat bicubic?\nPSNR gain of Solo SR over bicubic up-sampling at every $r$ "
         "(dB, mean over splits); the workbook expects a gain at every $r$ on every dataset.", {}),
        ("code", "quality.solo_vs_bicubic", {}),
        ("markdown", "## Why $G$ is silent as written\n"
         "Signal gain of each gated block of VDSR-CA, the body's gain, $G$'s residual against its input and the "
         "gradient of $\\mathcal{L}_{SR}$ reaching $G$'s first convolution, on training pairs (split 0), for a fresh "
         "$G$ at the paper's initialisation (`he`), the authors' release (`authors`: every conv, the attention's 1×1 "
         "ones included, $\\mathcal{N}(0, \\sqrt{2/n})$) and `identity`, and for each row's trained $G$ "
         "(`lib/models/sr/diagnostics.py`; `tables/sr_signal.md`, `figures/sr_signal_gain.png`).", {}),
        ("code", 'signal = report.extras["sr_signal"]\n'
         'Markdown(signal.conclusion if signal else "(no VDSR / VDSR-CA G in this table\'s configuration)")', {}),
        ("code", "signal.summary if signal else None", {}),
        ("code", "signal.figure if signal else None", {}),
    ],
    "09_ablation_pooling": [
        ("markdown", "# 09 · Table V: pooling in the HRNet-ReID head\n\n"
         "Eq. (6) pools every branch with adaptive average pooling plus $\\lambda_n$ × adaptive max pooling "
         "(**AAP+AMP**); the variants use **AAP** or **AMP** alone (`model.pooling`). HR re-ID, as in the paper: the "
         "phase-1 network, HR queries vs HR gallery. AAP+AMP is the default configuration — Table I's teacher, the "
         "same run. Datasets without HR query images (CAVIAR) are skipped.", {}),
        ("code", COMMON + 'VARIANTS = ["pool_avg", "pool_max", "default"]  # variants of configs/tables/table5.yaml',
         {"tags": ["parameters"]}),
        ("code", table_cell("table5"), {}),
    ],
    "10_ablation_heads": [
        ("markdown", "# 10 · Table VI: the re-ID head\n\n"
         "On the same backbone: its **own classification head** as the re-ID network (HRNet-W32-C in the paper) vs "
         "the **HRNet-ReID head** (Eq. (6), Fig. 4), plus the **BNNeck** re-ID baseline (ResNet-50 in the paper "
         "profile; it shares its phase-1 network with Table IV). HR queries vs HR gallery.", {}),
        ("code", COMMON + 'VARIANTS = ["classifier", "default", "bnneck"]  # variants of configs/tables/table6.yaml',
         {"tags": ["parameters"]}),
        ("code", table_cell("table6"), {}),
    ],
    "11_ftwa": [
        ("markdown", "# 11 · FTWA Table 1: feature transformation and self-weighted attention\n\n"
         "FTWA (ICIP) is a two-stream ResNet-50: separate shallow encoders $E_H$ / $E_L$ (conv1 + layer1) for HR and "
         "LR images and a shared re-ID encoder $E_{ID}$ (layer2–4) (Eq. 1); **RAFT** $T$ transforms an LR image's "
         "feature map into its HR counterpart, trained with $\\mathcal{L}_{RAFT} = \\|F_{HR} - T(F'_{LR})\\|_1$ "
         "(Eq. 2); **SWA** weighs every vector with a learned quality (Eq. 4) in the classification (Eq. 5) and triplet "
         "(Eq. 7) losses: $\\mathcal{L} = 3\\,\\mathcal{L}^{Cls}_{SWA} + \\mathcal{L}^{Tri}_{SWA} + 0.1\\,"
         "\\mathcal{L}_{RAFT}$ (Eq. 8). At test time an LR query is matched to the HR gallery with a quality-weighted "
         "distance (`test.match`; the paper gives no formula — our readings are compared below). The last section "
         "puts PS-HRNet and FTWA side by side on the same data, splits, backbone and epoch budget.", {}),
        ("code", FTWA_COMMON + 'VARIANTS = ["default", "as_written"]  # variants of configs/tables/ftwa_table1.yaml\n'
         'COMPARE_METHODS = True  # also write tables/methods.md: PS-HRNet vs FTWA (trains PS-HRNet where missing)',
         {"tags": ["parameters"]}),
        ("code", table_cell("ftwa_table1"), {}),
        ("markdown", "## Training\nThe loss terms of Eq. (8) and the mean quality weights $w$ of each vector set per "
         "epoch (`figures/11_ftwa_training.png`).", {}),
        ("code", "from lib.viz import show_figure, training_curves\nfrom lib.workflow import output_dir, "
         "stage_histories\n\nkeys = (\"loss_total\", \"loss_cls\", \"loss_tri\", \"loss_raft\", \"loss_w_hr\", "
         "\"loss_w_hr_p\", \"loss_w_lr\", \"loss_w_lr_p\")\nfig = training_curves(stage_histories(report.experiment, "
         "\"train\"), keys)\nshow_figure(fig, output_dir(params) / \"figures\" / \"11_ftwa_training.png\")", {}),
        ("markdown", "## How a query is matched\nRank-1 (%) of every matching (`lib/methods/ftwa/matching.py`); `*` "
         "marks the configuration's `test.match`. Choose among them on validation identities "
         "(`scripts/tune.py --notebook 11_ftwa --stages train`), never on these test numbers.", {}),
        ("code", "from lib.methods.ftwa.matching import match_frame\n\nmatch_frame(report.experiment.summaries)", {}),
        ("markdown", "## PS-HRNet and FTWA side by side\nSame profile for both methods (`configs/<method>/<profile>"
         ".yaml`), each against its own paper; parameters and test-time cost per query (`tables/methods.md`).", {}),
        ("code", "from lib.workflow import run_methods_table\n\nif COMPARE_METHODS:\n"
         "    methods, methods_md, _ = run_methods_table(params)\n    display(Markdown(methods_md))", {}),
    ],
    "12_ftwa_ablation": [
        ("markdown", "# 12 · FTWA Table 2: baseline and variants\n\n"
         "**Baseline**: one ResNet-50 for both resolutions with cross entropy + triplet on both; **FTWA_B**: the "
         "two-stream backbone only; **FTWA_R**: + RAFT (no SWA weights); **FTWA as written**: everything; and ours, "
         "**FTWA with a weight floor** (`loss.weight_floor` 0.1: no stream's identity terms can be weighted to zero; "
         "the `cpu` profile's default). Variants of one "
         "configuration: `configs/tables/ftwa_table2.yaml`. Paper dataset: MLR-CUHK03 (else those present).", {}),
        ("code", FTWA_COMMON + 'VARIANTS = ["baseline", "ftwa_b", "ftwa_r", "as_written", "ftwa_floor"]  # variants of '
         'configs/tables/ftwa_table2.yaml', {"tags": ["parameters"]}),
        ("code", table_cell("ftwa_table2"), {}),
        ("markdown", "## Ranking and matchings\nVariants ranked by Rank-1 (%), then every variant's Rank-1 under each "
         "matching (`*`: the one used).", {}),
        ("code", "report.ranking", {}),
        ("code", "from lib.methods.ftwa.matching import match_frame\n\nmatch_frame(report.experiment.summaries)", {}),
    ],
    "13_explorer": [
        ("markdown", "# 13 · Explorer: step through a trained run query by query\n\n"
         "Pick a profile, dataset, split and method among the runs that exist (after `make demo` there are some), "
         "then a query — as listed or hardest first (lowest AP). Shown: the LR query at its true size, its bilinear "
         "up-sampling, the restorations of the SR modules trained on that split (PSNR against the HR original), the "
         "HR original; the top-k of the whole gallery, true matches framed green and the others red, with the rank of "
         "the first true match and the query's AP (multi-shot protocol over the full gallery, so it does not depend "
         "on the tables' random single-shot draws). *query rate* re-makes the query from its HR original at r = 1…8 "
         "(training saw 2–4). Last: the CMC curves of every method on this dataset and split, as each run recorded "
         "them. Logic: `lib/explorer.py` (this notebook only wires widgets).", {}),
        ("code", 'PROFILE = "tiny"  # profile whose runs are explored (outputs/PROFILE/runs)\n'
         + OUTPUT_ROOT_PARAM + 'DATASET = ""  # dataset to open first (empty: the first with runs)\n'
         'SPLIT = 0  # identity split to open first\n'
         'METHOD = ""  # method/variant/output to open first (empty: pshrnet/default/pshrnet where it exists)\n'
         'ORDER = "as listed"  # query order: "as listed" or "hardest first" (by AP)\n'
         'QUERY = 0  # position of the query in that order\n'
         'QUERY_RATE = 0  # 0: the query as stored; r in 1..8: re-made from its HR original down-sampled by r\n'
         'TOP_K = 10  # gallery images shown', {"tags": ["parameters"]}),
        ("code", "from lib.explorer import Explorer\n\n"
         "explorer = Explorer(OUTPUT_ROOT, PROFILE, dataset=DATASET or None, split=SPLIT, method=METHOD or None, "
         "top_k=TOP_K)\nexplorer.order.value = ORDER\nexplorer.rate.value = QUERY_RATE\n"
         "explorer.query.value = QUERY\nexplorer.widget", {}),
        ("markdown", "## The view above, as a still\nThe same query's ranked gallery as a static picture (kept when "
         "the notebook is viewed without a kernel).", {}),
        ("code", "from IPython.display import Image\n\nprint(explorer.view.summary)\nImage(explorer.ranking_image.value)",
         {}),
    ],
    "14_resolution_robustness": [
        ("markdown", "# 14 · Resolution robustness: accuracy against the query's resolution\n\n"
         "Beyond both papers. Training saw down-sampling rates $r \\in \\{2, 3, 4\\}$; here every test query is "
         "re-made from its HR original at $r$ = 1 … 8 and matched against the same HR gallery by every trained method "
         "of the profile — PS-HRNet, the bicubic baseline, the teacher without SR, FTWA where present — each with its "
         "own test and the dataset's protocol. Datasets whose queries are natively LR (CAVIAR) cannot be swept and "
         "are listed as such. Results are cached per run and rate (`robustness/cache/`); "
         "`tables/robustness.{csv,md}`, `figures/robustness.png`. Logic: `lib/robustness.py`.", {}),
        ("code", 'PROFILE = "tiny"  # profile whose runs are swept (outputs/PROFILE/runs)\n'
         + OUTPUT_ROOT_PARAM + 'DATASETS = []  # datasets to sweep (empty: every dataset with runs)\n'
         'SPLITS = []  # identity splits to sweep (empty: every split with runs)\n'
         'METHODS = ["pshrnet/default/pshrnet", "pshrnet/default/baseline", "pshrnet/default/teacher_lr", '
         '"ftwa/default/ftwa"]  # method/variant/output labels (absent ones are listed as skipped)\n'
         'QUERY_RATES = [1, 2, 3, 4, 5, 6, 7, 8]  # query down-sampling rates (1: the HR original)',
         {"tags": ["parameters"]}),
        ("code", "from IPython.display import Markdown\n\nfrom lib.robustness import sweep, write_robustness\n"
         "from lib.workflow import output_dir\n\n" + PARAMS
         + "frame, skipped = sweep(output_dir(params), outputs=METHODS, rates=QUERY_RATES, datasets=DATASETS or None,\n"
         "                       splits=SPLITS or None)\n"
         "files = write_robustness(frame, skipped, output_dir(params), PROFILE,\n"
         "                         command=f\"make reproduce TABLES=robustness PROFILE={PROFILE}\")\n"
         "Markdown((output_dir(params) / \"tables\" / \"robustness.md\").read_text())", {}),
        ("code", "from lib.robustness import robustness_figure\n\nrobustness_figure(frame) if not frame.empty else "
         "print(\"nothing to plot\")", {}),
    ],
}




def notebook(stem: str, cells) -> dict:
    """The notebook ``stem`` as nbformat 4.5 JSON: cell ids ``NN-ii``, no outputs, the workbook kernel."""
    out = []
    for i, (kind, text, meta) in enumerate(cells):
        src = text.rstrip("\n").splitlines(keepends=True)  # as Jupyter saves a cell: no final newline
        cell = {"cell_type": kind, "id": f"{stem[:2]}-{i:02d}", "metadata": meta, "source": src}
        if kind == "code":
            cell |= {"execution_count": None, "outputs": []}
        out.append(cell)
    kernelspec = {"display_name": KERNEL_DISPLAY_NAME, "language": "python", "name": KERNEL_NAME}
    return {"cells": out, "metadata": {"kernelspec": kernelspec, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def render(stem: str) -> str:
    """The exact text of ``notebooks/<stem>.ipynb``."""
    return json.dumps(notebook(stem, NOTEBOOKS[stem]), indent=1, ensure_ascii=False) + "\n"


def _difference(text: str, expected: dict) -> str:
    """Where a notebook file's text departs from ``expected`` (its generated JSON), in a few words."""
    try:
        nb = json.loads(text)
    except ValueError:
        return "not valid JSON"
    if nb == expected:
        return "same content, other formatting or key order"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return "not a notebook"
    for key in ("metadata", "nbformat", "nbformat_minor"):
        if nb.get(key) != expected[key]:
            return f"notebook {key}"
    cells, want = nb["cells"], expected["cells"]
    for i, (c, w) in enumerate(zip(cells, want)):
        if c != w:
            keys = sorted(k for k in set(c) | set(w) if c.get(k) != w.get(k)) if isinstance(c, dict) else ["cell"]
            return f"cell {i} ({w['id']}): {', '.join(keys)}"
    return f"{len(cells)} cells, {len(want)} generated"


def check(folder: Path) -> list[str]:
    """One line per notebook of ``folder`` out of step with ``NOTEBOOKS``; writes nothing."""
    problems = []
    for stem in NOTEBOOKS:
        path = folder / f"{stem}.ipynb"
        if not path.is_file():
            problems.append(f"{path.name}: missing")
            continue
        text = render(stem)
        try:
            found = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            found = None
        if found != text:
            why = "not UTF-8" if found is None else _difference(found, json.loads(text))
            problems.append(f"{path.name}: differs from its cells here ({why})")
    problems += [f"{p.name}: not generated here" for p in sorted(folder.glob("*.ipynb"))
                 if p.stem not in NOTEBOOKS]
    return problems


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Write every notebook from its cells in this file (or --check them).")
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit with 1 naming each notebook that differs, is missing or is not generated")
    ap.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "notebooks",
                    help="the notebooks' folder (default: notebooks/ of this repository)")
    args = ap.parse_args(argv)
    if args.check:
        problems = check(args.dir)
        if problems:
            print(f"{len(problems)} notebook(s) in {args.dir} out of step with scripts/make_notebooks.py "
                  "(edit the cells there, run it, commit both):", file=sys.stderr)
            print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
            return 1
        print(f"all {len(NOTEBOOKS)} notebooks in {args.dir} are what scripts/make_notebooks.py writes")
        return 0
    args.dir.mkdir(parents=True, exist_ok=True)
    written = []
    for stem in NOTEBOOKS:
        path, text = args.dir / f"{stem}.ipynb", render(stem)
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            path.write_bytes(text.encode("utf-8"))
            written.append(path.name)
    print(f"wrote {len(written)} of {len(NOTEBOOKS)} notebooks in {args.dir}"
          + (f": {', '.join(written)}" if written else " (all unchanged)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
