"""What was heard: the action's name, rejection of non-actions, few-shot enrollment.

A light head on AVAGFormer's audio tokens (the segmentation model stays frozen) names the
action in a sound with a calibrated confidence, or rejects the sound as "not an action"
(speech, music, clapping, alarms, noise...). New actions are taught with a few clips as
prototypes in the head's embedding space. Public API: :class:`ActionRecognizer`.
"""

from .recognizer import ActionRecognizer, Heard, RecognizerConfig

__all__ = ["ActionRecognizer", "Heard", "RecognizerConfig"]
