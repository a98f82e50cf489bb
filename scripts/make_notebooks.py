"""Write the thin notebooks 07–14 (title, parameters, calls into ``lib``) without outputs.

Run once after editing the cells below: ``python scripts/make_notebooks.py``; the notebooks are committed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COMMON = '''PROFILE = "tiny"  # profile name: outputs go to OUTPUT_ROOT/PROFILE/
OUTPUT_ROOT = "outputs"  # output root, relative to the repository root
DATASETS = ["synthetic"]  # MLR datasets notebook 01 built (built here with its defaults if missing)
DATA_ROOT = ""  # folder of a real dataset, or the folder holding several (used only when a manifest is missing)
CONFIG = "configs/pshrnet/tiny.yaml"  # the method configuration; configs/pshrnet/paper.yaml is the paper setting
SEED = 0  # seed of the MLR dataset and of training
SPLITS = [0]  # identity splits to train and evaluate
OVERRIDES = {}  # dotted configuration keys to change, e.g. {"phase1.epochs": 10, "data.height": 128}
WEIGHTS = {}  # backbone -> weight source for every row using it, e.g. {"resnet50": "file:/w/resnet50.pth"} (docs/getting_started.md)
BOOTSTRAP = 1000  # bootstrap replicates of the 95 % interval on each effect (docs/intervals.md)
'''

FTWA_COMMON = COMMON.replace("configs/pshrnet/tiny.yaml", "configs/ftwa/tiny.yaml").replace(
    "configs/pshrnet/paper.yaml", "configs/ftwa/paper.yaml").replace('"phase1.epochs"', '"train.epochs"')

TABLE = '''from IPython.display import Markdown

from lib.workflow import run_and_tabulate

params = {{k: v for k, v in dict(globals()).items() if k.isupper()}}
report = run_and_tabulate(params, "{table}")
Markdown(report.markdown)'''

NOTEBOOKS = {
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
        ("code", TABLE.format(table="table4"), {}),
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
        ("code", TABLE.format(table="table3"), {}),
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
        ("code", TABLE.format(table="table5"), {}),
    ],
    "10_ablation_heads": [
        ("markdown", "# 10 · Table VI: the re-ID head\n\n"
         "On the same backbone: its **own classification head** as the re-ID network (HRNet-W32-C in the paper) vs "
         "the **HRNet-ReID head** (Eq. (6), Fig. 4), plus the **BNNeck** re-ID baseline (ResNet-50 in the paper "
         "profile; it shares its phase-1 network with Table IV). HR queries vs HR gallery.", {}),
        ("code", COMMON + 'VARIANTS = ["classifier", "default", "bnneck"]  # variants of configs/tables/table6.yaml',
         {"tags": ["parameters"]}),
        ("code", TABLE.format(table="table6"), {}),
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
        ("code", TABLE.format(table="ftwa_table1"), {}),
        ("markdown", "## Training\nThe loss terms of Eq. (8) and the mean quality weights $w$ of each vector set per "
         "epoch (`figures/11_ftwa_training.png`).", {}),
        ("code", "from lib.viz import save_figure, training_curves\nfrom lib.workflow import output_dir, "
         "stage_histories\n\nkeys = (\"loss_total\", \"loss_cls\", \"loss_tri\", \"loss_raft\", \"loss_w_hr\", "
         "\"loss_w_hr_p\", \"loss_w_lr\", \"loss_w_lr_p\")\nfig = training_curves(stage_histories(report.experiment, "
         "\"train\"), keys)\nsave_figure(fig, output_dir(params) / \"figures\" / \"11_ftwa_training.png\")", {}),
        ("markdown", "## How a query is matched\nRank-1 (%) of every matching (`lib/methods/ftwa/matching.py`); `*` "
         "marks the configuration's `test.match`. Choose among them on validation identities "
         "(`scripts/tune.py --notebook 11_ftwa --stages train`), never on these test numbers.", {}),
        ("code", "from lib.methods.ftwa.matching import match_frame\n\nmatch_frame(report.experiment.summaries)", {}),
        ("markdown", "## PS-HRNet and FTWA side by side\nSame profile for both methods (`configs/<method>/<profile>"
         ".yaml`), each against its own paper; parameters and test-time cost per query (`tables/methods.md`).", {}),
        ("code", "from lib.results.methods_table import run_methods_table\n\nif COMPARE_METHODS:\n"
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
        ("code", TABLE.format(table="ftwa_table2"), {}),
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
         'OUTPUT_ROOT = "outputs"  # output root, relative to the repository root\n'
         'DATASET = ""  # dataset to open first (empty: the first with runs)\n'
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
         'OUTPUT_ROOT = "outputs"  # output root, relative to the repository root\n'
         'DATASETS = []  # datasets to sweep (empty: every dataset with runs)\n'
         'SPLITS = []  # identity splits to sweep (empty: every split with runs)\n'
         'METHODS = ["pshrnet/default/pshrnet", "pshrnet/default/baseline", "pshrnet/default/teacher_lr", '
         '"ftwa/default/ftwa"]  # method/variant/output labels (absent ones are listed as skipped)\n'
         'QUERY_RATES = [1, 2, 3, 4, 5, 6, 7, 8]  # query down-sampling rates (1: the HR original)',
         {"tags": ["parameters"]}),
        ("code", "from IPython.display import Markdown\n\nfrom lib.robustness import sweep, write_robustness\n"
         "from lib.workflow import output_dir\n\nparams = {k: v for k, v in dict(globals()).items() if k.isupper()}\n"
         "frame, skipped = sweep(output_dir(params), outputs=METHODS, rates=QUERY_RATES, datasets=DATASETS or None,\n"
         "                       splits=SPLITS or None)\n"
         "files = write_robustness(frame, skipped, output_dir(params), PROFILE,\n"
         "                         command=f\"make reproduce TABLES=robustness PROFILE={PROFILE}\")\n"
         "Markdown((output_dir(params) / \"tables\" / \"robustness.md\").read_text())", {}),
        ("code", "from lib.robustness import robustness_figure\n\nrobustness_figure(frame) if not frame.empty else "
         "print(\"nothing to plot\")", {}),
    ],
}


def notebook(stem: str, cells) -> dict:
    out = []
    for i, (kind, text, meta) in enumerate(cells):
        src = text.splitlines(keepends=True)
        cell = {"cell_type": kind, "id": f"{stem[:2]}-{i:02d}", "metadata": meta, "source": src}
        if kind == "code":
            cell |= {"execution_count": None, "outputs": []}
        out.append(cell)
    return {"cells": out, "metadata": {"kernelspec": {"display_name": "Python 3 (reid workbook)", "language": "python",
                                                      "name": "python3"}, "language_info": {"name": "python"}},
            "nbformat": 4, "nbformat_minor": 5}


def main() -> int:
    root = Path(__file__).resolve().parents[1] / "notebooks"
    for stem, cells in NOTEBOOKS.items():
        (root / f"{stem}.ipynb").write_text(json.dumps(notebook(stem, cells), indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
