"""Evaluator networks (trained on a dataset's train split, cached by content fingerprint).

    ev = get_evaluator("byol", context)        # kinds: byol, classifier, radio_cnn, segmenter
    ev.module, ev.fingerprint, ev.metadata

``byol``: BYOL-trained ResNet18 features behind fid_byol / kid_byol (paper 001);
``classifier``: paper 000's ResNet18 classifier behind classifier_accuracy;
``radio_cnn``: the Tang et al. 2019 style CNN behind RAMIS (paper 003);
``segmenter``: U-Net behind segmentation_iou (paper 001).
"""
from .cache import (
    KINDS,
    Evaluator,
    evaluator_root,
    export_evaluators,
    fingerprint_payload,
    get_evaluator,
    import_evaluators,
    list_evaluators,
    load_entry,
    train_evaluator,
)
from .features import embed, predict_masks, predict_proba

__all__ = [
    "KINDS",
    "Evaluator",
    "get_evaluator",
    "fingerprint_payload",
    "train_evaluator",
    "load_entry",
    "list_evaluators",
    "export_evaluators",
    "import_evaluators",
    "evaluator_root",
    "embed",
    "predict_proba",
    "predict_masks",
]
