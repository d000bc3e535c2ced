"""Evaluator networks (trained on a dataset's train split, cached by content fingerprint).

    ev = get_evaluator("byol", context)        # kinds: byol, classifier, radio_cnn, segmenter
    ev.module, ev.fingerprint, ev.metadata

``byol``: BYOL-trained ResNet18 features behind fid_byol / kid_byol (paper 001);
``classifier``: paper 000's ResNet18 classifier behind classifier_accuracy;
``radio_cnn``: the Tang et al. 2019 style CNN behind RAMIS (paper 003);
``segmenter``: U-Net behind segmentation_iou (paper 001).
Kinds register through entry points (group ``radiobench.evaluators``, see ``kinds``), the built-ins included.
"""
from . import cache
from .cache import *  # noqa: F401,F403  (the public API is cache.__all__)
from .features import embed, predict_masks, predict_proba

__all__ = [*cache.__all__, "embed", "predict_proba", "predict_masks"]
