"""Fine-tuning comparison of quantization (LSQ QAT) and pruning (gradual magnitude), paper §5, App. G-I,
plus the practitioner's toolbox (issue 15): pruning criteria (SNIP, GraSP, Fisher/OBD), N:M masks,
knowledge distillation, lottery-ticket rewinding, per-channel / asymmetric LSQ.

Parametrizations (``torch.nn.utils.parametrize``) make any nn.Module with conv/linear layers
compressible: ``MaskWeight`` (pruning masks) and ``LsqWeight`` (learned-step-size fake quantization).
"""

from pvq.training._bn import reestimate_bn
from pvq.training._criteria import CRITERIA, fisher_scores, grasp_scores, saliency, snip_scores
from pvq.training._data import fixed_subset, iterate_batches, train_val_split
from pvq.training._ddp import DistInfo, dist_info, init_distributed
from pvq.training._export import decode_quantized, encode_quantized, load_quantized, save_quantized
from pvq.training._finetune import (
    METHODS,
    SCHEDULES,
    FinetuneConfig,
    FinetuneResult,
    evaluate_accuracy,
    example_input,
    finetune,
    prepare_from_config,
    prepare_model,
)
from pvq.training._kd import DistillConfig, Distiller, feature_loss, kd_loss
from pvq.training._lsq import (
    LsqWeight,
    add_lsq,
    compressible_layers,
    export_quantized,
    first_last,
    lsq_fake_quant,
    lsq_modules,
    lsq_scale_parameters,
    mse_affine,
    mse_scale,
)
from pvq.training._mixed import MixedPlan, sensitivity_layer_bits
from pvq.training._nm import nm_keep_mask, nm_pattern_ok, parse_nm, set_nm_masks
from pvq.training._pretrain import PretrainConfig, cache_dir, pretrain_small_resnet
from pvq.training._prune import (
    MaskWeight,
    add_masks,
    magnitude_mask,
    mask_modules,
    model_sparsity,
    score_mask,
    set_sparsity,
)
from pvq.training._repr import activation_snr_db, capture_activations, linear_cka, representation_distances
from pvq.training._schedule import (
    GradualSchedule,
    IterativeSchedule,
    LotterySchedule,
    OneShotSchedule,
    cubic_sparsity,
    make_schedule,
)

__all__ = [
    "CRITERIA",
    "DistInfo",
    "DistillConfig",
    "Distiller",
    "FinetuneConfig",
    "FinetuneResult",
    "GradualSchedule",
    "IterativeSchedule",
    "LotterySchedule",
    "LsqWeight",
    "METHODS",
    "MaskWeight",
    "OneShotSchedule",
    "PretrainConfig",
    "SCHEDULES",
    "activation_snr_db",
    "add_lsq",
    "add_masks",
    "cache_dir",
    "capture_activations",
    "compressible_layers",
    "cubic_sparsity",
    "dist_info",
    "evaluate_accuracy",
    "export_quantized",
    "encode_quantized",
    "decode_quantized",
    "save_quantized",
    "load_quantized",
    "feature_loss",
    "finetune",
    "first_last",
    "fisher_scores",
    "fixed_subset",
    "grasp_scores",
    "init_distributed",
    "iterate_batches",
    "kd_loss",
    "linear_cka",
    "lsq_fake_quant",
    "lsq_modules",
    "lsq_scale_parameters",
    "magnitude_mask",
    "make_schedule",
    "mask_modules",
    "model_sparsity",
    "mse_affine",
    "mse_scale",
    "nm_keep_mask",
    "nm_pattern_ok",
    "parse_nm",
    "example_input",
    "prepare_from_config",
    "MixedPlan",
    "sensitivity_layer_bits",
    "prepare_model",
    "pretrain_small_resnet",
    "reestimate_bn",
    "representation_distances",
    "saliency",
    "score_mask",
    "set_nm_masks",
    "set_sparsity",
    "snip_scores",
    "train_val_split",
]
