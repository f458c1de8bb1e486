"""Fine-tuning comparison of quantization (LSQ QAT) and pruning (gradual magnitude), paper §5, App. G-I.

Parametrizations (``torch.nn.utils.parametrize``) make any nn.Module with conv/linear layers
compressible: ``MaskWeight`` (pruning masks) and ``LsqWeight`` (learned-step-size fake quantization).
"""

from pvq.training._bn import reestimate_bn
from pvq.training._data import fixed_subset, iterate_batches, train_val_split
from pvq.training._ddp import DistInfo, dist_info, init_distributed
from pvq.training._finetune import (
    METHODS,
    FinetuneConfig,
    FinetuneResult,
    evaluate_accuracy,
    finetune,
    prepare_model,
)
from pvq.training._lsq import (
    LsqWeight,
    add_lsq,
    compressible_layers,
    export_quantized,
    lsq_fake_quant,
    lsq_modules,
    lsq_scale_parameters,
    mse_scale,
)
from pvq.training._pretrain import PretrainConfig, cache_dir, pretrain_small_resnet
from pvq.training._prune import (
    MaskWeight,
    add_masks,
    magnitude_mask,
    mask_modules,
    model_sparsity,
    set_sparsity,
)
from pvq.training._repr import activation_snr_db, capture_activations, linear_cka, representation_distances
from pvq.training._schedule import (
    GradualSchedule,
    IterativeSchedule,
    OneShotSchedule,
    cubic_sparsity,
    make_schedule,
)

__all__ = [
    "METHODS",
    "DistInfo",
    "FinetuneConfig",
    "FinetuneResult",
    "GradualSchedule",
    "IterativeSchedule",
    "LsqWeight",
    "MaskWeight",
    "OneShotSchedule",
    "PretrainConfig",
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
    "finetune",
    "fixed_subset",
    "init_distributed",
    "iterate_batches",
    "linear_cka",
    "lsq_fake_quant",
    "lsq_modules",
    "lsq_scale_parameters",
    "magnitude_mask",
    "make_schedule",
    "mask_modules",
    "model_sparsity",
    "mse_scale",
    "prepare_model",
    "pretrain_small_resnet",
    "reestimate_bn",
    "representation_distances",
    "set_sparsity",
    "train_val_split",
]
