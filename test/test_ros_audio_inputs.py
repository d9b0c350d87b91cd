"""Audio message adapters. The two audio_common_msgs packages are not installable here (no
wheels), so their messages are stand-ins with the same field layout as the upstream .msg
definitions; our own AudioFrame is the real generated class."""

from __future__ import annotations

from types import SimpleNamespace as NS

import numpy as np
import pytest

from conftest import needs_ros

pytestmark = needs_ros


def test_avag_audio_frame_is_decoded_channels_first():
    from avag_ros.audio_inputs import message_class, to_numpy
    from avag_ros.conversions import numpy_to_audio_frame

    x = np.stack([np.linspace(-1, 1, 64), np.zeros(64)]).astype(np.float32)
    msg = numpy_to_audio_frame(x, 48000, "S16LE")
    assert message_class("avag").__name__ == "AudioFrame"
    y, rate = to_numpy(msg, "avag")
    assert rate == 48000 and y.shape == (2, 64)
    np.testing.assert_allclose(y, x, atol=1 / 32767)


def test_ros_drivers_audio_data_with_info():
    from avag_ros.audio_inputs import RawAudioInfo, to_numpy

    pcm = (np.array([[0, 16384], [-16384, 32767]], "<i2")).reshape(-1)  # 2 frames, stereo
    msg = NS(audio=NS(data=pcm.tobytes()))
    y, rate = to_numpy(msg, "audio_common", RawAudioInfo(16000, 2, "S16LE"))
    assert rate == 16000
    np.testing.assert_allclose(y, [[0, -16384 / 32767], [16384 / 32767, 1.0]], atol=1e-6)
    with pytest.raises(ValueError, match="AudioInfo"):
        to_numpy(msg, "audio_common", None)
    with pytest.raises(ValueError, match="whole number"):
        to_numpy(NS(audio=NS(data=b"\x00\x01\x02")), "audio_common", RawAudioInfo(16000, 2, "S16LE"))


def test_mgonzs13_audio_stamped_typed_arrays():
    from avag_ros.audio_inputs import to_numpy

    data = NS(float32_data=[], int32_data=[], int16_data=[0, 32767, -32767, 0], int8_data=[], uint8_data=[])
    msg = NS(audio=NS(audio_data=data, info=NS(format=8, channels=2, rate=22050, chunk=2)))
    y, rate = to_numpy(msg, "audio_common_stamped")
    assert rate == 22050
    np.testing.assert_allclose(y, [[0, -1.0], [1.0, 0]], atol=1e-6)
    msg.audio.info.format = 99
    with pytest.raises(ValueError, match="format"):
        to_numpy(msg, "audio_common_stamped")


def test_missing_audio_common_package_is_named():
    from avag_ros.audio_inputs import message_class

    try:
        import audio_common_msgs  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="audio_common_msgs"):
            message_class("audio_common")
    else:
        pytest.skip("audio_common_msgs is installed here")
